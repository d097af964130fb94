"""Label issues from the grid's out-of-fold predictions (the label_issues rule), and the
review data of the flagged samples."""

"""Result sheets and the study summary (the sheet and summary rules)."""

#!/bin/sh
# Headless Chromium and its WebDriver for the summary-page browser test
# (tests/workflow/test_summary_page.py). Debian packages only; nothing is
# downloaded by Selenium itself. Does nothing when both are already there.
set -eu

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_browser.sh: need root (or sudo) to install chromium and chromium-driver" >&2
        exit 1
    fi
fi

$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver

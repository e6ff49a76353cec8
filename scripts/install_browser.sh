#!/usr/bin/env bash
# Debian's Chromium for the one end-to-end browser test (Playwright's own browser download fails offline).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y --no-install-recommends chromium fonts-noto-cjk >/dev/null 2>&1 \
    || (apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium fonts-noto-cjk >/dev/null)) \
    && echo "installed $(/usr/bin/chromium --version)"
else
  echo "no /usr/bin/chromium and no root apt-get: the browser test will be skipped (sudo apt-get install chromium)"
fi

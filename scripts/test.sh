#!/usr/bin/env bash
# Runs every check Hookline has: formatting, lints, unit and integration tests against a real
# DynamoDB/SQS-compatible server (moto), the Lambda binary under cargo-lambda's emulator,
# schemathesis against local mode with the OpenAPI spec, and the SAM template lint. Installs
# its tools into .tools/ (git-ignored) and stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="$PWD/.tools"
mkdir -p "$TOOLS"

install_venv() { # venv-dir requirements-file
  local venv="$1" requirements="$2" stamp="$1/.installed"
  if [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
    return
  fi
  echo "==> installing $(basename "$requirements") into ${venv#$PWD/}"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
}

install_venv "$TOOLS/venv" scripts/requirements-test.txt
install_venv "$TOOLS/sam-venv" scripts/requirements-sam.txt
# The npm twin of the Standard Webhooks verifier, for the signature tests.
NPM_VERIFIER=standardwebhooks@1.1.1
if [ "$(cat "$TOOLS/node/.installed" 2>/dev/null)" != "$NPM_VERIFIER" ]; then
  echo "==> installing $NPM_VERIFIER into .tools/node"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" "$NPM_VERIFIER"
  echo "$NPM_VERIFIER" >"$TOOLS/node/.installed"
fi
export PATH="$TOOLS/venv/bin:$PATH"

MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$TOOLS/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$TOOLS/moto.log" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true' EXIT
python3 - "$MOTO_PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
for _ in range(150):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(f"moto did not start on {url}; see .tools/moto.log")
PY
export HOOKLINE_TEST_MOTO_URL="http://127.0.0.1:$MOTO_PORT"
echo "==> moto listening on $HOOKLINE_TEST_MOTO_URL"

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --all-targets --workspace -- -D warnings
echo "==> cargo test"
# The reliability tests (crash recovery, a hanging receiver beside a healthy one) measure drain
# times and latencies; they run after the rest, one at a time, so a busy machine running every
# other test at once does not decide their outcome.
RELIABILITY=(crash:: isolation::)
cargo test --workspace --no-fail-fast -- "${RELIABILITY[@]/#/--skip=}" 2>&1 | tee "$TOOLS/cargo-test.log"
echo "==> cargo test: reliability tests, one at a time"
cargo test --test it -- --test-threads=1 "${RELIABILITY[@]}" 2>&1 | tee -a "$TOOLS/cargo-test.log"
echo "==> schemathesis: local mode against openapi/hookline.yaml"
scripts/api-conformance.sh target/debug/hookline
echo "==> sam validate --lint"
AWS_DEFAULT_REGION=us-east-1 "$TOOLS/sam-venv/bin/sam" validate --lint --template template.yaml
echo "==> all checks passed"
# One closing line for the whole suite, summed over every test binary cargo ran.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$TOOLS/cargo-test.log"

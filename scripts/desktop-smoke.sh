#!/usr/bin/env bash
# Desktop smoke test: start the real window under Xvfb and check that it rendered the UI.
# The binary must be built with -tags selftest: its hook checks the page from inside the window and
# prints one "SELFTEST {json}" line. A screenshot of the window goes to build/shots/desktop.png.
set -euo pipefail

bin=${1:?usage: desktop-smoke.sh path/to/opentracy-selftest}
root=$(cd "$(dirname "$0")/.." && pwd)
shots="$root/build/shots"
work=$(mktemp -d)
mkdir -p "$shots"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# Hold the window open long enough for the screenshot after the report.
OPENTRACY_SELFTEST_HOLD=4 xvfb-run -a -s "-screen 0 1280x900x24 -nolisten tcp" \
	bash -c 'echo "$DISPLAY" > "$1/display"; echo "$XAUTHORITY" > "$1/xauth"; exec "$2" --addr 127.0.0.1:0 --data-dir "$1/data"' _ "$work" "$bin" \
	>"$work/out.log" 2>"$work/err.log" &
pid=$!

result=""
for _ in $(seq 1 900); do # up to 90 s: the first WebKit start is slow on a cold machine
	result=$(grep -m1 '^SELFTEST ' "$work/out.log" || true)
	[ -n "$result" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done

if [ -z "$result" ]; then
	echo "desktop smoke: the window never reported (exit: $(wait "$pid"; echo $?))"
	echo "--- stdout"; cat "$work/out.log"; echo "--- stderr"; tail -50 "$work/err.log"
	echo "0 passed, 1 failed"
	exit 1
fi

DISPLAY=$(cat "$work/display") XAUTHORITY=$(cat "$work/xauth") import -window root "$shots/desktop.png" 2>/dev/null \
	|| echo "desktop smoke: screenshot failed (continuing)"
echo "desktop smoke: $result"

json=${result#SELFTEST }
if ! node -e '
	const r = JSON.parse(process.argv[1]);
	const want = ["Overview","Traces","Clusters","Datasets","Distill","Models & Aliases","Providers","Settings"];
	const problems = [];
	if (!r.ok) problems.push("self-test reported failure: " + (r.error || "see fields"));
	for (const l of want) if (!(r.links || []).includes(l)) problems.push("missing nav link " + l);
	if (!/^http:\/\/127\.0\.0\.1:\d+\/v1$/.test(r.baseURL || "")) problems.push("gateway URL not shown: " + r.baseURL);
	if (!r.events) problems.push("no live event from /api/events through the AssetServer");
	if (r.indicator !== "Server connection: Live") problems.push("the UI event stream is not live: " + r.indicator);
	if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
' "$json"; then
	echo "0 passed, 1 failed"
	exit 1
fi

# The window quits by itself after the hold; a clean exit is part of the test.
if ! timeout 20 tail --pid="$pid" -f /dev/null; then
	echo "desktop smoke: the app did not exit after the self-test"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"

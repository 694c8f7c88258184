#!/bin/bash
# Formatting is mechanical (STYLE.md rule 19): every tracked C file must be
# what clang-format makes of it with the repo's .clang-format.
set -u
cd "${1:-.}" || exit 1
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
bad=0 good=0
for f in $files; do
	if clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		good=$((good + 1))
	else
		bad=$((bad + 1))
		echo "not clang-formatted: $f (run: clang-format -i $f)"
	fi
done
if [ "$good" -eq 0 ] && [ "$bad" -eq 0 ]; then
	# No files means the wrong directory or a broken git ls-files, not a clean tree.
	echo "FAIL: no C files found under $(pwd)"
	bad=1
fi
echo "$good passed, $bad failed"
[ "$bad" -eq 0 ]

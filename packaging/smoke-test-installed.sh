#!/usr/bin/env bash
# Checks an installed avatar-studio package: the files a desktop needs are in place, the
# command answers, and the studio window starts under Xvfb and is still running after
# 10 seconds (a crash at start would end it sooner).
set -euo pipefail
for f in /usr/bin/avatar-studio /usr/share/applications/avatar-studio.desktop \
         /usr/share/metainfo/io.github.avatar_studio.AvatarStudio.metainfo.xml \
         /usr/share/icons/hicolor/256x256/apps/avatar-studio.png \
         /usr/share/icons/hicolor/scalable/apps/avatar-studio.svg; do
  test -f "$f" || { echo "missing from the package: $f" >&2; exit 1; }
done
avatar-studio --version
avatar-studio plan --demo --device cpu >/dev/null
home=$(mktemp -d)
set +e
HOME="$home" xvfb-run -a -s "-screen 0 1280x800x24" timeout 10 avatar-studio \
  /usr/share/avatar-studio/assets/sample-portrait.png /usr/share/avatar-studio/assets/sample-voice.wav \
  >"$home/studio.log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 124 ]; then
  echo "the installed studio exited with $rc within 10 s:" >&2
  cat "$home/studio.log" >&2
  exit 1
fi
echo "installed studio ran for 10 s under Xvfb"

#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Avatar Studio builds and tests against, if any is missing.
# Quick and silent when everything is already there; uses sudo when not run as root.
set -euo pipefail

packages=(
  # building: C toolchain glue, bindgen's libclang, ALSA for audio playback, FFmpeg for MP4
  build-essential pkg-config libclang-dev libasound2-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev
  # tests: the ffmpeg/ffprobe tools check what we write; Xvfb + Mesa run the studio headless
  ffmpeg xvfb xauth mesa-vulkan-drivers
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing system packages: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"

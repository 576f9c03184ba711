#!/usr/bin/env python3
"""Makes the sample portrait and voice in assets/ (run from the repository root).

The portrait is a stylised face drawn here with Pillow; the voice is espeak-ng speech resampled
to 24 kHz mono WAV with sox. Both are the project's own work, so they can ship with it.
"""
import subprocess
from PIL import Image, ImageDraw, ImageFilter

W, H = 768, 1024


def portrait(path):
    img = Image.new("RGB", (W, H))
    px = img.load()
    for y in range(H):  # soft studio backdrop: a vertical gradient
        t = y / H
        c = (int(70 + 40 * t), int(92 + 30 * t), int(128 + 20 * t))
        for x in range(W):
            px[x, y] = c
    d = ImageDraw.Draw(img)
    skin, shade = (231, 190, 160), (205, 160, 130)
    d.ellipse((120, 760, 648, 1240), fill=(52, 70, 96))  # shoulders (jacket)
    d.polygon([(330, 760), (438, 760), (384, 880)], fill=(236, 236, 240))  # shirt collar
    d.rectangle((322, 600, 446, 790), fill=shade)  # neck
    d.ellipse((214, 200, 554, 660), fill=skin)  # face
    d.ellipse((196, 390, 246, 500), fill=shade)  # ears
    d.ellipse((522, 390, 572, 500), fill=shade)
    d.chord((200, 150, 568, 470), 180, 360, fill=(58, 40, 34))  # hair
    d.ellipse((200, 250, 300, 430), fill=(58, 40, 34))
    d.ellipse((468, 250, 568, 430), fill=(58, 40, 34))
    for cx in (312, 456):  # eyes
        d.ellipse((cx - 34, 398, cx + 34, 438), fill=(250, 250, 248))
        d.ellipse((cx - 16, 400, cx + 16, 436), fill=(88, 62, 44))
        d.ellipse((cx - 7, 410, cx + 7, 426), fill=(20, 16, 14))
        d.ellipse((cx + 2, 406, cx + 8, 412), fill=(255, 255, 255))
        d.line((cx - 40, 372, cx + 36, 362), fill=(58, 40, 34), width=9)  # brows
    d.line((384, 440, 374, 520), fill=shade, width=6)  # nose
    d.arc((356, 500, 404, 536), 20, 160, fill=shade, width=5)
    d.chord((330, 552, 438, 600), 0, 180, fill=(160, 70, 78))  # mouth
    d.line((330, 576, 438, 576), fill=(120, 50, 56), width=3)
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    img.save(path, optimize=True)


def voice(path):
    text = ("Hello! I am your avatar. Give me a portrait and a voice, "
            "and I will speak your words, clip by clip, right on your own computer.")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", "/tmp/sample_voice.wav", text], check=True)
    subprocess.run(["sox", "/tmp/sample_voice.wav", "-r", "24000", "-c", "1", "-b", "16", path], check=True)


if __name__ == "__main__":
    portrait("assets/sample-portrait.png")
    voice("assets/sample-voice.wav")

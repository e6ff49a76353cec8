"""OCR cost per scanned page, and Tesseract on one thread vs its own OpenMP threads, side by side.

    nice -n 5 python bench/ocr.py --pages 2 --repeats 1

Builds an image-only A4 PDF at 150 dpi (40 lines a page of seeded English, German and Russian words, DejaVu Sans),
then reads every page through ``indexer.ingest.ocr.ocr_pdf_pages`` (the indexer's own path: PDFium render at
300 dpi, ``tesseract stdin stdout`` in every installed language) with ``OMP_THREAD_LIMIT=1`` (what the indexer
uses) and with ``OMP_THREAD_LIMIT`` = the CPU count (Tesseract's default), alternating, and prints seconds per
page, the ratio and the share of the page's distinct words read back.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import time

from PIL import Image, ImageDraw, ImageFont

from indexer.ingest import ocr
from indexer.ingest.limits import Deadline

WORDS = [
    "glacier",
    "valley",
    "moraine",
    "ice",
    "river",
    "stone",
    "Gletscher",
    "Tal",
    "Eis",
    "Fluss",
    "ледник",
    "долина",
    "лёд",
    "река",
    "камень",
]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def scanned(pages: int, seed: int) -> tuple[bytes, set[str]]:
    rng = random.Random(seed)
    font = ImageFont.truetype(FONT, 26)
    images, truth = [], set()
    for _ in range(pages):
        image = Image.new("L", (1240, 1754), 255)
        draw = ImageDraw.Draw(image)
        for n in range(40):
            line = " ".join(rng.choice(WORDS) for _ in range(9))
            truth |= set(line.split())
            draw.text((100, 100 + 38 * n), line, fill=0, font=font)
        images.append(image)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return buf.getvalue(), truth


def timed(data: bytes, pages: int, threads: str) -> tuple[float, set[str]]:
    os.environ["OMP_THREAD_LIMIT"] = threads
    t0 = time.perf_counter()
    text = " ".join(t for _, t in ocr.ocr_pdf_pages(data, range(1, pages + 1), Deadline(None)))
    return (time.perf_counter() - t0) / pages, set(text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if why := ocr.missing():
        raise SystemExit(f"OCR cannot run: {why}")
    data, truth = scanned(args.pages, args.seed)
    version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"{version}; languages {ocr.languages()}; {args.pages} pages, {len(data) / 1e6:.2f} MB")
    results: dict[str, list[float]] = {"1": [], str(os.cpu_count()): []}
    for _ in range(args.repeats):
        for threads in results:
            seconds, got = timed(data, args.pages, threads)
            results[threads].append(seconds)
            print(
                f"OMP_THREAD_LIMIT={threads}: {seconds:.1f} s/page, words read {len(truth & got) / len(truth):.2f}"
            )
    one, default = (min(v) for v in results.values())
    print(
        f"best of {args.repeats}: 1 thread {one:.1f} s/page, default {default:.1f} s/page, ratio {default / one:.2f}"
    )


if __name__ == "__main__":
    main()

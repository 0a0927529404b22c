"""A page, not only a line: split a photo or scan of several lines into lines, in reading order.

The page goes the road every picture takes (open, grey, `preprocess.line_to_ink`). Then the
marks (connected pieces of ink) are grouped into lines: each mark is smeared sideways by
about two letter heights, so the letters and words of one line run together while the lines
stay apart, and blobs that share most of their height are one line. Each line keeps only
its own marks (a descender from the line above is not read twice), is framed like any line
(`framing.frame_line`) and read by the line reader. The rows between the lines found are
then looked at again on their own, for a line in pencil beside lines in ink (the page's ink is
scaled to its darkest strokes). Boxes are in the picture's own pixels.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .errors import HCRError
from .framing import LINE_HEIGHT, frame_line
from .preprocess import line_to_ink, not_writing, one_sentence_errors, picture_label, refuse_slivers, to_grey

PAGE_SIDE = 1600  # a page is looked at with its longer side at most this many pixels
MIN_PEAK_SHARE = 0.02  # rows with less ink than this share of the page's inkiest row hold no line
MIN_DIP = 0.5  # between two lines the ink per row falls to at most half the lower line's peak
MIN_LINE_SHARE = 0.35  # a blob lower than this share of the typical letter height is a speck, not a line
MAX_FAINT_SHARE = 2.5  # a faint line found between the others is at most this many letter heights tall


@dataclass
class PageLine:
    image: np.ndarray  # the framed line the reader sees
    box: tuple  # (left, top, right, bottom) in the picture's pixels


def _shrunk(grey):
    h, w = grey.shape
    if max(h, w) <= PAGE_SIDE:
        return grey, 1.0
    scale = PAGE_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(grey, mode="F").resize(size, Image.Resampling.BOX)), scale


def _picture_size(source, fallback):
    """(width, height) of the picture as the user sees it (upright), for boxes in its own pixels."""
    from .preprocess import _orientation

    if isinstance(source, np.ndarray):
        return source.shape[1], source.shape[0]
    try:
        if isinstance(source, Image.Image):
            image = source
        else:
            import io

            image = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source)
        w, h = image.size
        return (h, w) if _orientation(image) in (5, 6, 7, 8) else (w, h)
    except Exception:
        return fallback[1], fallback[0]


def _letter_height(heights, areas):
    """The typical height of a mark that is a letter or a word (not a dot, not a long flourish)."""
    big = heights[areas >= np.percentile(areas, 40)]
    return float(np.median(big if big.size else heights))


def _paper(grey):
    """The paper's shade in a crop (what covers another line's strokes there)."""
    return np.float32(np.percentile(grey, 75) if np.median(grey) >= 0.5 else np.percentile(grey, 25))


def _marks(ink):
    """(labels, count, slices, areas, typical letter height) of the page's marks; None if it has none."""
    marks = ink > 0.3
    labels, count = ndimage.label(marks, structure=np.ones((3, 3)))
    if count == 0:
        return None
    slices = ndimage.find_objects(labels)
    heights = np.array([s[0].stop - s[0].start for s in slices], float)
    areas = ndimage.sum_labels(marks, labels, np.arange(1, count + 1))
    return labels, count, slices, areas, max(3.0, _letter_height(heights, areas))


def split_lines(ink, height=LINE_HEIGHT, grey=None, letter=None, marks=None):
    """Ink map of a page -> [(framed line, (left, top, right, bottom))] in reading order.

    Lines are found where the ink's row profile peaks (one peak per line of writing, peaks at
    least about a letter height apart); every mark then goes to the line whose band holds its
    centre, so dots, accents and descenders stay with their own line. Given the page's `grey`
    picture, each line's ink is found again in its own box, as for a line read alone: a faint
    line on a page of dark ones keeps its strokes. `letter` is the typical letter height, when
    the page's other lines already tell it; `marks` is `_marks(ink)`, when the caller has it.
    """
    from scipy.signal import find_peaks

    found = marks or _marks(ink)
    if found is None:
        return []
    labels, count, slices, areas, own_letter = found
    letter = letter or own_letter
    # Each row's share of ink, so that a faint line counts as much as a dark one.
    rows = np.sqrt(np.clip(ink, 0, 1)).sum(axis=1)
    profile = ndimage.gaussian_filter1d(rows.astype(float), max(1.0, letter / 4))
    # A line is a peak that the rows on both sides dip well below: judged against the peak's own
    # height, so a short or faint line next to a long, dark one is still a line of its own.
    peaks, props = find_peaks(profile, distance=max(2, int(0.7 * letter)), height=MIN_PEAK_SHARE * profile.max(),
                              prominence=0)
    peaks = peaks[props["prominences"] >= MIN_DIP * props["peak_heights"]]
    if peaks.size == 0:
        peaks = np.array([int(np.argmax(profile))])
    # Band edges: the emptiest row between two neighbouring peaks.
    edges = [0] + [int(p + np.argmin(profile[p:q])) for p, q in zip(peaks[:-1], peaks[1:])] + [ink.shape[0]]
    centres = np.array([(s[0].start + s[0].stop) / 2 for s in slices])
    band = np.searchsorted(edges[1:-1], centres, side="right")  # which line each mark belongs to
    out = []
    for k in range(len(peaks)):
        members = np.flatnonzero(band == k) + 1
        members = members[areas[members - 1] > 0]
        if members.size == 0:
            continue
        mine = np.zeros(count + 1, bool)
        mine[members] = True
        t = min(slices[m - 1][0].start for m in members)
        btm = max(slices[m - 1][0].stop for m in members)
        lft = min(slices[m - 1][1].start for m in members)
        rgt = max(slices[m - 1][1].stop for m in members)
        if btm - t < MIN_LINE_SHARE * letter or (len(peaks) > 1 and areas[members - 1].sum() < 0.1 * letter * letter):
            continue  # specks between lines, not a line (a picture of one short word or digit is not a speck)
        pad = 2
        t, btm = max(0, t - pad), min(ink.shape[0], btm + pad)
        lft, rgt = max(0, lft - pad), min(ink.shape[1], rgt + pad)
        crop = None
        if grey is not None:  # everything in the box but the other lines' marks
            theirs = ndimage.binary_dilation((labels[t:btm, lft:rgt] > 0) & ~mine[labels[t:btm, lft:rgt]], iterations=1)
            local, found = line_to_ink(np.where(theirs, _paper(grey[t:btm, lft:rgt]), grey[t:btm, lft:rgt]))
            crop = local if found else None
        if crop is None:
            keep = ndimage.binary_dilation(mine[labels[t:btm, lft:rgt]], iterations=1)
            crop = np.where(keep, ink[t:btm, lft:rgt], 0.0).astype(np.float32)
        out.append((frame_line(crop, height), (lft, t, rgt, btm)))
    return out


def _column_spans(mask):
    """How tall the ink stands in the tallest tenth of the columns that hold any (0 for none)."""
    inked = mask.any(axis=0)
    if not inked.any():
        return 0.0
    rows = np.arange(mask.shape[0])[:, None]
    top = np.where(mask, rows, mask.shape[0]).min(axis=0)[inked]
    bottom = np.where(mask, rows, -1).max(axis=0)[inked]
    return float(np.percentile(bottom - top + 1, 90))


def faint_lines(grey, found, letter, height=LINE_HEIGHT):
    """Lines in the rows that no line found so far covers, each stretch of them looked at on its
    own: the page's ink is scaled to its darkest strokes, so pencil beside black ink falls below
    the threshold there. A stretch counts only if what it holds has the height of writing (a ruled
    line, a shadow's edge or a speck does not)."""
    covered = np.zeros(grey.shape[0], bool)
    for _, (_, top, _, bottom) in found:
        covered[top:bottom] = True
    out = []
    runs, count = ndimage.label(~covered)
    for rows in ndimage.find_objects(runs)[:count]:
        top, bottom = rows[0].start, rows[0].stop
        if bottom - top < 0.7 * letter:
            continue
        ink, has_ink = line_to_ink(grey[top:bottom])
        if not has_ink:
            continue
        for image, (lft, t, rgt, btm) in split_lines(ink, height, grey[top:bottom], letter):
            inside = t >= 2 and btm <= bottom - top - 2  # not the ends of another line's strokes
            mask = ink[t:btm, lft:rgt] > 0.3
            solid = mask.mean() > 0.5  # a band of shadow or a paper's edge
            flat = _column_spans(mask) < MIN_LINE_SHARE * letter  # a rule, even a tilted one: no letter stands up
            if inside and not solid and not flat and MIN_LINE_SHARE * letter <= btm - t <= MAX_FAINT_SHARE * letter:
                out.append((image, (lft, top + t, rgt, top + btm)))
    return out


def _line_marks(ink, grey, box):
    """A found line's marks, for `not_writing`: the page's ink in its box, or, for a faint line (its
    ink below the page's threshold), the ink found again in the box alone."""
    left, top, right, bottom = box
    marks = ink[top:bottom, left:right] > 0.3
    if not marks.any():
        local, found = line_to_ink(grey[top:bottom, left:right])
        marks = local > 0.3 if found else marks
    return marks


MAX_LINES = 80  # a handwritten page holds far fewer; past this a picture would hold the reader for minutes


def page_lines(source, name=None, height=LINE_HEIGHT):
    """Any picture of writing (one line or a page) -> [PageLine] in reading order.

    Raises HCRError with one sentence for a file that is not a usable image or that shows no writing.
    """
    label = picture_label(source, name)
    with one_sentence_errors(label):
        grey = to_grey(source, name, 2 * PAGE_SIDE)
        refuse_slivers(grey, label)
        full_w, full_h = _picture_size(source, grey.shape)
        grey, _ = _shrunk(grey)
        ink, found = line_to_ink(grey)
        if not found:
            raise HCRError(f"{label} shows no writing (it looks blank): write or photograph some text and try again.")
        sx, sy = full_w / grey.shape[1], full_h / grey.shape[0]
        marks = _marks(ink)
        found_lines = split_lines(ink, height, grey, marks=marks) if marks else []
        if found_lines:
            found_lines += faint_lines(grey, found_lines, marks[4], height)
            found_lines.sort(key=lambda line: line[1][1])
        if not found_lines:
            raise HCRError(f"{label} shows no writing (it looks blank): write or photograph some text and try again.")
        why = [not_writing(_line_marks(ink, grey, box)) for _, box in found_lines]
        if all(why):  # bars, blobs or noise only; among lines of writing, such a "line" is left out
            raise HCRError(f"{label} shows no writing (it looks like {why[0]}, not letters): write or photograph "
                           "some text and try again.")
        found_lines = [line for line, reason in zip(found_lines, why) if not reason]
        if len(found_lines) > MAX_LINES:
            raise HCRError(f"{label} holds {len(found_lines)} lines of writing, more than the {MAX_LINES} a page is "
                           "read with: photograph or crop it in parts of fewer lines.")
        return [PageLine(image, (round(b[0] * sx), round(b[1] * sy), round(b[2] * sx), round(b[3] * sy)))
                for image, b in found_lines]


def compose_page(pictures, seed=0, width=None):
    """Line pictures (grey PIL images, dark on light) pasted one under the other on a paper-coloured
    page with uneven gaps and indents: a page whose lines and texts are known, to test the splitter."""
    rng = np.random.default_rng(seed)
    pictures = [p.convert("L") for p in pictures]
    width = width or max(p.width for p in pictures) + 120
    tops, y = [], 40
    for p in pictures:
        tops.append(y)
        y += p.height + int(rng.integers(4, 24))
    page = Image.new("L", (width, y + 40), int(rng.integers(225, 250)))
    boxes = []
    for p, top in zip(pictures, tops):
        left = int(rng.integers(20, max(21, width - p.width - 20)))
        paper = np.asarray(p, dtype=np.float32)
        # Lighten each picture's own paper to the page's, so only the ink stands out.
        level = float(np.percentile(paper, 90))
        ink = np.clip((level - paper) / max(level, 1), 0, 1)
        region = np.asarray(page.crop((left, top, left + p.width, top + p.height)), dtype=np.float32)
        page.paste(Image.fromarray(np.clip(region * (1 - ink), 0, 255).astype(np.uint8)), (left, top))
        boxes.append((left, top, left + p.width, top + p.height))
    return page, boxes

"""Synthetic lines: text, character bank, drawing, the line framing and users' pictures of lines."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from helpers import alphabet, framing, lines, preprocess
from helpers.errors import HCRError
from helpers.labels import CASE_CLASS_NAMES


def font_images(per_class=2, seed=0):
    """Dataset-like images (uint8 (N, 28, 28), bright on black) of every class, in Pillow's own font."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for k, char in enumerate(CASE_CLASS_NAMES):
        for _ in range(per_class):
            font = ImageFont.load_default(size=int(rng.integers(20, 26)))
            image = Image.new("L", (28, 28), 0)
            ImageDraw.Draw(image).text((14, 14), char, font=font, fill=255, anchor="mm", stroke_width=1)
            images.append(np.asarray(image))
            labels.append(k)
    return np.stack(images), np.array(labels)


@pytest.fixture(scope="module")
def bank():
    return lines.CharacterBank.from_images(*font_images())


def ink_rows(image, threshold=0.5):
    rows = np.flatnonzero((image >= threshold).any(axis=1))
    return rows[-1] - rows[0] + 1


# --- Text ---------------------------------------------------------------------------------------


def test_alphabet_has_punctuation_and_accents_after_the_letters():
    assert lines.ALPHABET.startswith(" 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    assert set(".,'\"-:;!?()/&") <= set(lines.ALPHABET) and "é" in lines.ALPHABET
    assert len(lines.ALPHABET) + 1 == lines.NUM_CTC_CLASSES and lines.BLANK == 0
    assert lines.encode(" 0Aa") == [1, 2, 12, 38]
    assert lines.decode(lines.encode("Room 101, l'été!")) == "Room 101, l'été!"
    with pytest.raises(HCRError, match="not in the line alphabet"):
        lines.encode("12*03")


def test_fold_maps_variants_on_purpose_and_reports_what_has_no_place():
    assert alphabet.fold("l\u2019homme \u00abdit\u00bb \u2014 c\u0153ur \u017fans") == (
        "l'homme \"dit\" - coeur sans", set())
    assert alphabet.fold("  a\tb  ") == ("a b", set())
    text, unknown = alphabet.fold("5 * 3 = $15")
    assert unknown == {"*", "$"} and "*" not in text
    assert alphabet.fold("e\u0301")[0] == "é"  # NFC first: a combining accent becomes the letter
    assert alphabet.ascii_fold("été à") == "ete a"


def test_punctuate_adds_only_alphabet_marks_and_keeps_the_words():
    rng = np.random.default_rng(0)
    texts = [lines.punctuate(lines.sample_text(rng, "train", 40), rng) for _ in range(500)]
    assert all(set(t) <= set(lines.ALPHABET) for t in texts)
    marks = set("".join(texts)) - set(lines.ALPHABET[:63])
    assert {",", ".", "'", "-"} <= marks


@pytest.mark.parametrize("split", ["train", "test"])
def test_sample_text_stays_in_the_alphabet_and_the_length(split):
    rng = np.random.default_rng(0)
    texts = [lines.sample_text(rng, split, max_chars=32) for _ in range(2000)]
    assert all(set(t) <= set(lines.ALPHABET) for t in texts)
    assert all(1 <= len(t) <= 32 and t == " ".join(t.split()) for t in texts)
    lengths = {len(t) for t in texts}
    assert 1 in lengths and max(lengths) >= 30 and len(lengths) >= 30  # 1..32 characters, all lengths
    joined = "".join(texts)
    assert sum(c.isdigit() for c in joined) > 0.05 * len(joined)  # numbers are mixed in
    assert any(t.isupper() for t in texts) and any(t.islower() for t in texts)
    assert any(t[0].isupper() and t[1:].islower() and " " in t for t in texts)  # sentence case
    short = [lines.sample_text(rng, split, max_chars=6) for _ in range(300)]
    assert max(len(t) for t in short) <= 6


def test_held_out_words_never_appear_in_training_text():
    rng = np.random.default_rng(1)
    words = {w.lower() for _ in range(3000) for w in lines.sample_text(rng, "train").split() if w.isalpha()}
    assert words and not any(lines.is_test_word(w) for w in words)
    held_out = {w.lower() for _ in range(1000) for w in lines.sample_text(rng, "test").split() if w.isalpha()}
    assert held_out and all(lines.is_test_word(w) for w in held_out)
    train_vocabulary, test_vocabulary = lines.vocabulary("train")[0], lines.vocabulary("test")[0]
    assert not set(train_vocabulary) & set(test_vocabulary)
    assert 0.07 < len(test_vocabulary) / (len(train_vocabulary) + len(test_vocabulary)) < 0.13


def test_sample_text_is_seeded():
    a = [lines.sample_text(np.random.default_rng(5)) for _ in range(3)]
    b = [lines.sample_text(np.random.default_rng(5)) for _ in range(3)]
    assert a == b


# --- Drawing ----------------------------------------------------------------------------------


def test_bank_sizes_characters_as_in_handwriting(bank):
    def height(char):
        return np.median([g.shape.shape[0] for g in bank.glyphs[char]])

    assert height("O") == pytest.approx(lines.CAP, abs=2) and height("0") == pytest.approx(lines.CAP, abs=2)
    assert height("o") / height("O") == pytest.approx(lines.X_HEIGHT, abs=0.05)
    assert height("l") / height("O") > 0.95
    g = bank.glyphs["g"][0]
    assert g.baseline < g.shape.shape[0]  # a descender hangs below the baseline
    assert bank.glyphs["O"][0].baseline == lines.CAP
    assert bank.chars() == "".join(CASE_CLASS_NAMES)


def test_render_line_draws_small_letters_smaller_than_capitals(bank):
    from scipy import ndimage

    ratios = []
    for seed in range(10):
        ink = lines.render_line("o O", bank, np.random.default_rng(seed))
        labels, count = ndimage.label(ink > 0.5)
        boxes = sorted(ndimage.find_objects(labels), key=lambda box: box[1].start)  # left to right
        if count == 2:
            small, capital = (box[0].stop - box[0].start for box in boxes)
            ratios.append(small / capital)
    assert len(ratios) >= 5 and 0.5 < np.median(ratios) < 0.75  # about X_HEIGHT


def test_render_line_is_bright_ink_on_black(bank):
    ink = lines.render_line("Room 101", bank, np.random.default_rng(0))
    assert ink.dtype == np.float32 and ink.min() >= 0 and ink.max() == pytest.approx(1.0)
    assert ink[0].max() == 0 and ink[-1].max() == 0 and ink[:, 0].max() == 0  # black around the ink
    assert 0.03 < (ink > 0.5).mean() < 0.5


def test_fsdl_style_gives_every_character_the_same_box(bank):
    ink = lines.render_line("ab C", bank, np.random.default_rng(0), style="fsdl")
    assert ink.shape[0] == 28 and ink.shape[1] >= 3 * 28 * 0.67
    with pytest.raises(HCRError, match="style"):
        lines.render_line("ab", bank, np.random.default_rng(0), style="cursive")


def test_font_banks_keep_the_fonts_baseline_and_write_whole_lines(bank):
    font = lines.CharacterBank.from_font(lambda size: ImageFont.load_default(size=size))
    assert font.chars().startswith("".join(CASE_CLASS_NAMES)) and set(font.chars()) <= set(lines.ALPHABET)
    o, g, big = font.glyphs["o"][0], font.glyphs["g"][0], font.glyphs["O"][0]
    assert big.baseline == pytest.approx(lines.CAP, abs=3)  # capitals stand on the baseline ...
    assert g.baseline < g.shape.shape[0] - 5  # ... descenders hang below it
    assert o.shape.shape[0] < 0.85 * big.shape.shape[0]
    empty = lines.CharacterBank({})
    in_fonts = lines.make_line_set(empty, 5, "train", seed=0, max_chars=8, font_banks=[font], font_share=1.0)
    assert len(in_fonts) == 5  # every line was written in the font
    with pytest.raises(HCRError, match="lacks"):
        lines.make_line_set(empty, 5, "train", seed=0, max_chars=8, font_banks=[font], font_share=0.0)


def test_frame_line_scales_to_the_height_and_keeps_the_aspect_and_the_grey():
    ink = np.zeros((300, 1200), np.float32)
    ink[100:150, 100:600] = 0.6  # a 50 x 500 bar: aspect 10
    out = framing.frame_line(ink)
    m, inner = framing.LINE_MARGIN, framing.LINE_HEIGHT - 2 * framing.LINE_MARGIN
    assert out.shape[0] == framing.LINE_HEIGHT and out.dtype == np.float32
    assert out.shape[1] == pytest.approx(10 * inner + 2 * m, abs=2)
    assert out[:m].max() == 0 and out[-m:].max() == 0 and out[:, :m].max() == 0
    assert ink_rows(out) == inner and out.max() == pytest.approx(1.0)  # stretched so the darkest ink is 1
    assert framing.frame_line(np.zeros((40, 40))).max() == 0  # no ink: all black
    assert framing.frame_line(np.ones((4, 4))).shape == (framing.LINE_HEIGHT, framing.LINE_HEIGHT)
    assert framing.frame_line(ink, height=32).shape[0] == 32


def level_ink(width=900, height=120, top=45, x_height=30, seed=0):
    """Ink of a level line of 'letters': strokes of one x-height, some with ascenders, a dot."""
    rng = np.random.default_rng(seed)
    ink = np.zeros((height, width), np.float32)
    for x in range(20, width - 40, 14):
        ink[top : top + x_height, x : x + 4] = 1.0
        ink[top : top + 4, x : x + 12] = 1.0  # joined at the top, like cursive
        if rng.random() < 0.2:
            ink[top - 20 : top, x : x + 4] = 1.0  # an ascender
    ink[top - 12 : top - 8, width - 30 : width - 26] = 1.0  # the dot of an i, clear of the rest
    return ink


def test_line_skew_finds_the_tilt_and_level_line_undoes_it():
    ink = level_ink()
    assert framing.line_skew(ink) == 0.0 and framing.level_line(ink) is ink  # level: left alone
    for angle in (-4.0, -2.5, 3.0):
        tilted = np.asarray(Image.fromarray(ink, mode="F").rotate(-angle, expand=True, fillcolor=0.0))
        assert framing.line_skew(tilted) == pytest.approx(angle, abs=0.5)
        levelled = framing.level_line(tilted)
        rows = lambda a: int((a.sum(axis=1) >= 0.25 * a.sum(axis=1).max()).sum())  # noqa: E731
        assert rows(levelled) <= rows(ink) + 4 < rows(tilted)  # the letters share rows again
    small = Image.fromarray(tilted, mode="F").resize((tilted.shape[1] // 5, tilted.shape[0] // 5))
    assert framing.level_line(np.asarray(small)).shape[0] >= 2 * framing.LINE_HEIGHT  # enlarged before the turn
    steep = np.asarray(Image.fromarray(ink, mode="F").rotate(-20, expand=True, fillcolor=0.0))
    assert abs(framing.line_skew(steep)) <= framing.MAX_SKEW  # beyond the search: never a wild turn
    assert framing.line_skew(np.zeros((40, 200), np.float32)) == 0.0


def test_drop_neighbours_cuts_the_lines_above_and_below_but_keeps_ascenders_and_dots():
    line = level_ink(height=100, top=35)
    ink = line.copy()
    ink[0:12, 100:104] = 1.0  # the tail of a letter of the line above, cut by the crop's top edge
    ink[0:6, 300:330] = 1.0
    ink[-10:, 500:504] = 1.0  # the top of a letter of the line below
    out = framing.drop_neighbours(ink)
    assert out[:12, 100:104].max() == 0 and out[:6, 300:330].max() == 0 and out[-10:, 500:504].max() == 0
    assert np.array_equal(out, line)  # every stroke of the line itself is kept, the i's dot too
    tall = line.copy()
    tall[0:35, 20:24] = 1.0  # an ascender that reaches the top edge through its letter
    assert np.array_equal(framing.drop_neighbours(tall), tall)
    framed = framing.frame_line(ink)  # frame_line tidies: the crop is the line's, not the neighbours'
    assert np.array_equal(framed, framing.frame_line(line))
    assert not np.array_equal(framing.frame_line(ink, tidy=False), framed)


def test_line_to_ink_keeps_dots_and_commas_and_drops_uneven_light():
    grey = np.tile(np.linspace(0.55, 0.95, 600, dtype=np.float32), (80, 1))  # a shadow across the paper
    for x in range(50, 400, 25):
        grey[20:48, x : x + 4] -= 0.45  # strokes of a 4-px pen
    grey[44:48, 450:454] -= 0.45  # a full stop of the same pen
    ink, found = preprocess.line_to_ink(grey)
    assert found and ink[46, 452] > 0.5 and ink[40, 102] > 0.5
    assert ink[10, 550] == 0 and ink[10, 5] == 0  # bright and dark ends of the shadow are both paper
    assert not preprocess.line_to_ink(np.full((60, 300), 0.8, np.float32))[1]


def test_make_line_set_is_compact_seeded_and_wide_enough_for_ctc(bank):
    a = lines.make_line_set(bank, 12, "test", seed=3, max_chars=10)
    b = lines.make_line_set(bank, 12, "test", seed=3, max_chars=10)
    assert len(a) == 12 and a.texts == b.texts and bool((a.pixels == b.pixels).all())
    assert a.pixels.dtype.is_floating_point is False and a.pixels.shape[0] == framing.LINE_HEIGHT
    assert all(int(w) >= lines.min_width(t) for w, t in zip(a.widths, a.texts))
    x, widths, targets, lengths = a.batch([0, 5, 7])
    assert x.shape == (3, 1, framing.LINE_HEIGHT, int(widths.max())) and float(x.max()) <= 1.0
    assert lengths.tolist() == [len(a.texts[i]) for i in (0, 5, 7)] and len(targets) == int(lengths.sum())
    assert np.allclose(a.image(5), x[1, 0, :, : int(widths[1])].numpy())
    assert lines.min_width("aab") == 4 * 4  # a repeated character needs a blank between


# --- Users' pictures of a line ----------------------------------------------------------------


def written_line(text="Room 101", dark_on_light=True, size=(420, 90)):
    font = ImageFont.load_default(size=40)
    paper, ink = (235, 20) if dark_on_light else (20, 235)
    image = Image.new("L", size, paper)
    ImageDraw.Draw(image).text((20, 20), text, font=font, fill=ink)
    return image


def png(image, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def test_prepare_line_reads_either_polarity_alike():
    dark = preprocess.prepare_line(png(written_line(dark_on_light=True)))
    light = preprocess.prepare_line(png(written_line(dark_on_light=False)))
    assert dark.shape == light.shape and dark.shape[0] == framing.LINE_HEIGHT
    assert np.corrcoef(dark.ravel(), light.ravel())[0, 1] > 0.97
    assert dark.shape[1] > 4 * framing.LINE_HEIGHT  # a line, not a character


def test_prepare_line_takes_arrays_and_big_photos():
    small = preprocess.prepare_line(np.asarray(written_line()))
    big = preprocess.prepare_line(written_line().resize((4200, 900)))
    assert small.shape[0] == big.shape[0] == framing.LINE_HEIGHT
    assert abs(small.shape[1] - big.shape[1]) <= framing.LINE_HEIGHT / 10  # the same width, give or take 4 px


def test_prepare_line_refuses_blank_and_broken_pictures(tmp_path):
    with pytest.raises(HCRError, match="shows no writing") as blank:
        preprocess.prepare_line(png(Image.new("L", (300, 60), 240)), name="blank.png")
    assert str(blank.value).startswith("blank.png") and "\n" not in str(blank.value)
    broken = tmp_path / "broken.png"
    broken.write_bytes(png(written_line())[:60])
    with pytest.raises(HCRError, match="broken.png"):
        preprocess.prepare_line(broken)
    with pytest.raises(HCRError, match="not an image"):
        preprocess.prepare_line(b"hello, not a picture")


def test_a_line_array_that_is_not_a_picture_gets_one_sentence():
    """The same checks as a single character's: wrong shape, or nothing but NaN (read as blank)."""
    with pytest.raises(HCRError, match=r"shape \(2, 2, 2, 2\)"):
        preprocess.prepare_line(np.zeros((2, 2, 2, 2)))
    with pytest.raises(HCRError, match="shows no writing"):
        preprocess.prepare_line(np.full((40, 200), np.nan))


def test_the_crops_benchmark_adds_neighbours_that_the_reader_tidies_away():
    from benchmarks.lines import CROPS

    paper = lambda ink: Image.fromarray((235 - 200 * ink).astype(np.uint8))  # noqa: E731
    line = paper(level_ink(height=100, top=35))
    other = paper(level_ink(height=100, top=50, x_height=50))  # its strokes run to its bottom edge
    for name, make in CROPS.items():
        crop = make(line, other)
        assert crop.mode == "L" and min(crop.size) > 10, name
    tails = CROPS["tails of the line above"](line, other)
    assert tails.size == (line.width, line.height + 14)
    alone = preprocess.prepare_line(line)
    tidied, as_cropped = preprocess.prepare_line(tails), preprocess.prepare_line(tails, tidy=False)
    assert abs(tidied.shape[1] - alone.shape[1]) <= 2  # the line is framed as if cropped alone
    assert as_cropped.shape[1] < 0.8 * alone.shape[1]  # untidied, the tails make the writing smaller

"""Real lines (the loader, on a tiny manifest written here), pages split into lines, and the peer scoring."""

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from helpers import alphabet, crnn, framing, line_training, page, preprocess, real_lines
from helpers.errors import HCRError

HEADER = "file\ttext\tsource\tpage\twriter\tsplit\n"


def written(text, size=(520, 64), font_size=34):
    image = Image.new("L", size, 228)
    ImageDraw.Draw(image).text((12, 10), text, font=ImageFont.load_default(size=font_size), fill=30)
    return image


@pytest.fixture
def collection(tmp_path):
    """A data root holding a tiny handwritten_lines folder in the real layout."""
    folder = tmp_path / "handwritten_lines"
    (folder / "lines" / "demo").mkdir(parents=True)
    rows = [("a_1.jpg", "Le 3 mai, l\u2019homme", "train"), ("a_2.jpg", "rue de la Paix (Paris)", "train"),
            ("b_1.jpg", "prix : 5 * 3", "train"), ("c_1.jpg", "\u00c9t\u00e9 1914.", "val"),
            ("d_1.jpg", "Fin", "test")]
    for name, text, _ in rows:
        written(text.replace("\u2019", "'")).save(folder / "lines" / "demo" / name, quality=90)
    lines_ = [f"lines/demo/{name}\t{text}\tdemo\t{name[0]}\tw{name[0]}\t{split}\n" for name, text, split in rows]
    (folder / "manifest.tsv").write_text(HEADER + "".join(lines_), encoding="utf-8")
    return tmp_path


def add_line(root, name, text, source, split, drawn=None):
    """One more line in the tiny collection: its picture (of `drawn`, else of `text`) and its manifest row."""
    folder = root / "handwritten_lines"
    written(drawn or text).save(folder / "lines" / "demo" / name, quality=90)
    with open(folder / "manifest.tsv", "a", encoding="utf-8") as manifest:
        manifest.write(f"lines/demo/{name}\t{text}\t{source}\t{name[0]}\tw{name[0]}\t{split}\n")


def test_manifest_folds_texts_and_drops_lines_it_cannot_write(collection):
    manifest = real_lines.read_manifest(collection)
    assert [e.text for e in manifest.split("train")] == ["Le 3 mai, l'homme", "rue de la Paix (Paris)"]
    assert manifest.dropped == {"*": 1}  # "prix : 5 * 3" has a character without a place: dropped, counted
    assert [e.split for e in manifest.entries] == ["train", "train", "val", "test"]
    with pytest.raises(HCRError, match="split"):
        manifest.split("dev")


def test_real_lines_are_framed_like_a_users_picture(collection):
    train = real_lines.load_split("train", collection, height=48, workers=1)
    assert train.texts == ["Le 3 mai, l'homme", "rue de la Paix (Paris)"] and train.sources == ["demo", "demo"]
    assert all(im.shape[0] == 48 and im.shape[1] > 100 and im.max() <= 1 for im in train.images)
    again = real_lines.load_split("train", collection, height=48, workers=1)  # from the cache now
    assert all(np.allclose(a, b, atol=1 / 255) for a, b in zip(train.images, again.images))
    line_set = real_lines.line_set(train)
    assert len(line_set) == 2 and line_set.height == 48


def test_a_line_with_no_ink_is_left_out_and_counted(collection):
    folder = collection / "handwritten_lines"
    Image.new("L", (520, 64), 228).save(folder / "lines" / "demo" / "e_1.jpg", quality=90)  # blank paper
    with open(folder / "manifest.tsv", "a", encoding="utf-8") as manifest:
        manifest.write("lines/demo/e_1.jpg\tVide\tdemo\te\twe\ttest\n")
    test = real_lines.load_split("test", collection, height=48, workers=1)
    assert test.texts == ["Fin"] and test.no_ink == 1
    assert real_lines.load_split("test", collection, height=48, workers=1).no_ink == 1  # from the cache too


def test_a_reader_can_be_trained_without_accents_to_measure_what_they_cost(collection):
    """recipe.accents=False strips the accents of the training texts only: val keeps its truth."""
    add_line(collection, "e_1.jpg", "No\u00ebl \u00e0 Paris", "demo", "train", drawn="Noel a Paris")
    recipe = line_training.LineRecipe(real_share=1.0, synthetic_share=0.0, font_share=0.0, height=48)
    (real, _), = line_training.build_parts(recipe, collection, progress=False, log=None)[0]
    assert "No\u00ebl \u00e0 Paris" in real.texts
    parts, val, _ = line_training.build_parts(replace(recipe, accents=False), collection, progress=False, log=None)
    assert "Noel a Paris" in parts[0][0].texts and len(parts[0][0]) == len(real)
    assert val.texts == ["\u00c9t\u00e9 1914."]


def test_balance_draws_each_collection_by_a_power_of_its_size(collection):
    """balance=1 keeps the real lines in one part; 0 gives every collection the same share of the batch."""
    add_line(collection, "f_1.jpg", "Lettre du 9", "letters", "train")
    recipe = line_training.LineRecipe(real_share=0.8, synthetic_share=0.0, font_share=0.0, height=48)
    parts, val, _ = line_training.build_parts(recipe, collection, progress=False, log=None)
    assert [len(p) for p, _ in parts] == [3] and parts[0][1] == pytest.approx(0.8) and val.groups == ["demo"]
    root2 = 2 ** 0.5
    for balance, shares in ((0.0, [0.4, 0.4]), (1.0 - 1e-9, [0.8 * 2 / 3, 0.8 / 3]),
                            (0.5, [0.8 * root2 / (1 + root2), 0.8 / (1 + root2)])):
        parts, _, _ = line_training.build_parts(replace(recipe, balance=balance), collection, progress=False, log=None)
        assert [len(p) for p, _ in parts] == [2, 1] and parts[1][0].texts == ["Lettre du 9"]
        assert [w for _, w in parts] == pytest.approx(shares)


def test_script_fonts_draw_font_lines_only_when_the_recipe_asks(collection, monkeypatch):
    """recipe.script_fonts adds the dev script fonts (never the held-out ones) to the font lines, cached apart."""
    from helpers import font_lines, fonts, lines

    files, caches = [], []

    def draw(font_files, *args, **kwargs):
        files.append(font_files)
        return lines.LineSet.from_images([np.zeros((48, 60), np.float32)], ["a"], 48)

    def cached(name, make):
        caches.append(name)
        return make()

    monkeypatch.setattr(fonts, "font_paths", lambda folder=None, names=None: {n: f"/fonts/{n}.woff2" for n in names})
    monkeypatch.setattr(font_lines, "make_font_line_set", draw)
    monkeypatch.setattr(line_training, "_cached", cached)
    recipe = line_training.LineRecipe(real_share=0.9, synthetic_share=0.0, font_share=0.1, height=48)
    for script in (False, True):
        line_training.build_parts(replace(recipe, script_fonts=script), collection, progress=False, log=None)
    plain, with_script = files
    assert plain == [f"/fonts/{n}.woff2" for n in fonts.DEV_FONTS]
    assert with_script == plain + [f"/fonts/{n}.woff2" for n in fonts.DEV_SCRIPT_FONTS]
    assert not caches[0].endswith("-script") and caches[1].endswith("-script")


def test_script_fonts_are_split_like_the_others_and_installed_with_them(tmp_path, monkeypatch):
    from helpers import fonts

    assert set(fonts.SCRIPT_FONTS).isdisjoint(fonts.FONTS) and len(set(fonts.SCRIPT_FONTS)) == 27
    assert tuple(fonts.SCRIPT_FONTS[2::3]) == fonts.HELD_OUT_SCRIPT_FONTS
    assert sorted(fonts.DEV_SCRIPT_FONTS + fonts.HELD_OUT_SCRIPT_FONTS) == sorted(fonts.SCRIPT_FONTS)
    with pytest.raises(HCRError, match=r"27 of the 27 handwriting fonts are not in .*python -m benchmarks\.fonts"):
        fonts.font_paths(tmp_path, names=fonts.SCRIPT_FONTS)
    commands = []
    monkeypatch.setattr(fonts.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(fonts.subprocess, "run", lambda command, check: commands.append(command))
    assert fonts.install(tmp_path) == 42 + 27
    assert f"@fontsource/zeyada@{fonts.FONT_VERSION}" in commands[0] and "@fontsource/caveat@5.3.0" in commands[0]


def test_a_missing_or_damaged_manifest_is_one_sentence(tmp_path, collection):
    with pytest.raises(HCRError, match="real handwritten lines are missing"):
        real_lines.read_manifest(tmp_path / "nowhere")
    manifest = collection / "handwritten_lines" / "manifest.tsv"
    manifest.write_text("file\ttext\n", encoding="utf-8")
    with pytest.raises(HCRError, match="header"):
        real_lines.read_manifest(collection)
    manifest.write_text(HEADER + "lines/x.jpg\tabc\tdemo\tp\tw\tsomewhere\n", encoding="utf-8")
    with pytest.raises(HCRError, match="split 'somewhere'"):
        real_lines.read_manifest(collection)
    manifest.write_text(HEADER + "lines/demo/gone.jpg\tabc\tdemo\tp\tw\ttrain\n", encoding="utf-8")
    with pytest.raises(HCRError, match="missing"):
        real_lines.load_split("train", collection, workers=1)


# --- Pages ------------------------------------------------------------------------------------


def test_a_page_with_more_lines_than_a_page_holds_is_refused_in_one_sentence(monkeypatch):
    """A crafted page of hundreds of lines held the reader for minutes: past MAX_LINES it is refused."""
    texts = ["The first line", "a second line", "the third", "and the last one."]
    picture, _ = page.compose_page([written(t, size=(40 + 17 * len(t), 64)) for t in texts], seed=1)
    monkeypatch.setattr(page, "MAX_LINES", 3)
    with pytest.raises(HCRError, match="holds 4 lines of writing, more than the 3"):
        page.page_lines(picture)


def test_lines_wider_than_any_real_line_are_read_greedily(monkeypatch):
    """The beam search's time grows with the columns: past BEAM_MAX_COLUMNS the greedy reading stands."""
    from helpers import decoding

    torch_model = crnn.CRNN(channels=(8, 16, 16, 32), hidden=32, layers=1, dropout=0.0)
    reader = crnn.TextReader.from_model(torch_model, lm=(decoding.CharLM(["abc"], order=2), 0.5, 1.0))
    calls = []
    real = decoding.beam_decode
    monkeypatch.setattr(decoding, "beam_decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    line = np.zeros((framing.LINE_HEIGHT, 400), np.float32)
    line[20:30, 10:390] = 1.0
    reader._read_one(line)
    assert calls == [1]
    monkeypatch.setattr(crnn, "BEAM_MAX_COLUMNS", 50)  # 400 pixels are 100 columns
    reader._read_one(line)
    assert calls == [1]


def test_a_composed_page_splits_into_its_lines_in_reading_order():
    texts = ["The first line", "a second, longer line of text", "3rd", "and the last one."]
    pictures = [written(t, size=(40 + 17 * len(t), 64)) for t in texts]
    picture, boxes = page.compose_page(pictures, seed=1)
    found = page.page_lines(picture)
    assert len(found) == len(texts)
    for line, (left, top, right, bottom) in zip(found, boxes):
        x0, y0, x1, y1 = line.box
        assert top - 4 <= y0 and y1 <= bottom + 4 and left - 4 <= x0 and x1 <= right + 4  # inside its own strip
        assert line.image.shape[0] == framing.LINE_HEIGHT
    widths = [line.image.shape[1] for line in found]
    assert widths[1] > widths[0] > widths[2]  # the longest text is the widest line


def pen_line(text, fill, width=900, blur=0.8):
    from PIL import ImageFilter

    picture = Image.new("L", (width, 64), 235)
    ImageDraw.Draw(picture).text((12, 10), text, font=ImageFont.load_default(size=36), fill=fill)
    return picture.filter(ImageFilter.GaussianBlur(blur))  # soft stroke edges, as a pen's


@pytest.mark.parametrize("fill, blur", [(120, 0.8), (150, 1.5), (190, 0.8)])
def test_a_faint_short_line_among_dark_long_ones_is_a_line_of_its_own_and_keeps_its_strokes(fill, blur):
    """Pages mix pens: a short pencil note between two long lines in black ink is still its own
    line, and its ink is found in its own box, as if it were read alone. The fainter two were
    lost whole before `page.faint_lines` looked again between the lines found."""
    from helpers.preprocess import prepare_line

    pictures = [pen_line("A long line written in black ink here", 10), pen_line("pencil", fill, 300, blur),
                pen_line("and one more long line in black ink", 10)]
    picture, _ = page.compose_page(pictures, seed=3)
    found = page.page_lines(picture)
    assert len(found) == 3
    alone = prepare_line(pictures[1])
    assert abs(found[1].image.shape[1] - alone.shape[1]) <= 0.1 * alone.shape[1]
    assert found[1].image.sum() > 0.9 * alone.sum()  # not only the darkest pixels of the pencil strokes


@pytest.mark.parametrize("rule", [215, 190, 150])
def test_ruled_paper_gives_one_line_per_line_of_writing(rule):
    """Looking again between the lines (for pencil) must not read the rules, or the ends of the
    strokes of the lines around, as lines of their own."""
    texts = ["first line of a note", "second line here", "and a third one"]
    picture = Image.new("L", (900, 60 * 6), 235)
    draw = ImageDraw.Draw(picture)
    for y in range(40, picture.height, 60):
        draw.line([(0, y), (picture.width, y)], fill=rule, width=2)
    for k, text in enumerate(texts):
        draw.text((30, 58 + 60 * k), text, font=ImageFont.load_default(size=34), fill=20)
    found = page.page_lines(picture)
    assert len(found) == 3
    assert [f.box[1] for f in found] == sorted(f.box[1] for f in found)


def test_a_tilted_rule_does_not_stand_up_like_writing():
    """`faint_lines` refuses what it finds between lines if no letter stands up in it: a form's
    rule, a little askew, spans many rows but each column holds only its thickness (one such rule
    was read as a line of its own on a val page before this was checked)."""
    rule = np.zeros((14, 300), bool)
    for x in range(300):
        rule[x * 10 // 300: x * 10 // 300 + 2, x] = True
    words = np.asarray(written("pencil note", size=(300, 40), font_size=30)) < 128
    assert page._column_spans(rule) == 2
    assert page._column_spans(words) >= 0.6 * 22  # letters with ascenders stand most of the line's height
    assert page._column_spans(np.zeros((5, 5), bool)) == 0


def test_a_page_without_writing_is_refused_and_boxes_are_in_the_pictures_pixels():
    with pytest.raises(HCRError, match="shows no writing"):
        page.page_lines(Image.new("L", (800, 600), 235), name="blank.jpg")
    big = written("Scaled up", size=(520, 64)).resize((3120, 384))
    (line,) = page.page_lines(big)
    assert 600 < line.box[2] <= 3120 and line.box[3] <= 384  # the big picture's pixels (the small one is 520 wide)


def not_writing_pictures():
    rng = np.random.default_rng(0)
    bar = np.full((200, 600), 255, np.uint8)
    bar[90:110, 50:550] = 0
    noise = (rng.random((200, 600)) * 255).astype(np.uint8)
    specks = np.full((300, 800), 255, np.uint8)
    for y, x in zip(rng.integers(0, 298, 3000), rng.integers(0, 798, 3000)):
        specks[y:y + 2, x:x + 2] = 0  # dust: thousands of specks, none longer than two pixels
    return {"a solid bar or blob": bar, "noise or texture": noise, "scattered specks": specks}


@pytest.mark.parametrize("why", ["a solid bar or blob", "noise or texture", "scattered specks"])
def test_a_bar_noise_or_specks_are_not_read_as_writing(why):
    """Before this check the reader invented text for them: a black bar came back "MIRRRRRRR",
    marked sure; noise came back as French words."""
    picture = Image.fromarray(not_writing_pictures()[why])
    for refuse in (page.page_lines, preprocess.prepare_line):
        with pytest.raises(HCRError, match=f"shows no writing \\(it looks like {why}, not letters\\)"):
            refuse(picture, name="odd.png")


@pytest.mark.slow
def test_no_real_line_is_taken_for_something_that_is_not_writing():
    """The thresholds of `preprocess.not_writing` hold with room to spare on every real line."""
    try:
        manifest = real_lines.read_manifest()
    except HCRError:
        pytest.skip("the real lines are not here (set HCR_DATA_DIR)")
    refused, blank = [], []
    for entry in manifest.entries:
        ink, found = preprocess.line_to_ink(preprocess.to_grey(str(entry.path), None, preprocess.LINE_WORKING_SIDE))
        if found and preprocess.not_writing(ink > 0.3):
            refused.append(entry.path.name)
        if not found:
            blank.append(entry.text)
        try:  # as --text and the web page read it: a band the page check drops would go unsaid
            page.page_lines(str(entry.path))
        except HCRError as error:
            if "looks like" in str(error):
                refused.append(f"{entry.path.name} (as a page)")
    assert len(manifest.entries) > 100 and not refused, refused[:10]
    assert len(blank) <= 5, blank  # 30 before bold short words counted ("de", "du"); now three small digits


def test_a_picture_of_one_thin_short_word_is_a_line_not_a_speck():
    """The page splitter drops specks between lines by their ink; a picture of one thin digit, cut
    as tightly as the real lines are, was dropped the same way and called blank (39 real lines)."""
    picture = Image.new("L", (30, 64), 200)
    ImageDraw.Draw(picture).line([(8, 12), (16, 8), (18, 16), (8, 52), (22, 50)], fill=60, width=2)
    assert len(page.page_lines(picture)) == 1


def test_a_bold_short_word_is_read_not_called_blank():
    """Printed in bold, "de" merges into one blob shorter than `preprocess.long_mark` of its thick pen:
    27 real lines ("de", "du" stamped in registers) were called blank, though the reader reads them."""
    from PIL import ImageFilter

    picture = Image.new("L", (120, 64), 225)
    ImageDraw.Draw(picture).text((40, 18), "de", fill=20, font=ImageFont.load_default(size=22), stroke_width=2,
                                 stroke_fill=20)
    picture = picture.filter(ImageFilter.GaussianBlur(1))
    ink, found = preprocess.line_to_ink(preprocess.to_grey(picture))
    assert found and preprocess.not_writing(ink > 0.3) is None
    assert len(page.page_lines(picture)) == 1 and preprocess.prepare_line(picture).any()


@pytest.mark.parametrize("shape", [(64, 400), (300, 800)])
@pytest.mark.parametrize("speck", [1, 2])
@pytest.mark.parametrize("per_megapixel", [2_000, 10_000, 30_000])
def test_dust_is_not_writing_however_dense(shape, speck, per_megapixel):
    """Dust has blobs as big as a bold word's where specks touch, but they hold little of its ink."""
    rng = np.random.default_rng(speck)
    picture = np.full(shape, 235, np.uint8)
    count = per_megapixel * shape[0] * shape[1] // 1_000_000
    for y, x in zip(rng.integers(0, shape[0] - speck, count), rng.integers(0, shape[1] - speck, count)):
        picture[y:y + speck, x:x + speck] = rng.integers(0, 120)
    for refuse in (page.page_lines, preprocess.prepare_line):
        with pytest.raises(HCRError, match="shows no writing"):
            refuse(Image.fromarray(picture), name="dust.png")


def test_ruled_paper_alone_is_not_writing_but_a_tiny_blob_may_be():
    ruled = Image.new("L", (800, 300), 255)
    for y in range(40, 300, 40):
        ImageDraw.Draw(ruled).line([(0, y), (800, y)], fill=0, width=2)
    with pytest.raises(HCRError, match="it looks like a solid bar or blob"):
        page.page_lines(ruled)
    assert preprocess.not_writing(np.ones((3, 15), bool)) is None  # a line scanned very small: not judged


def test_writing_passes_the_not_writing_check():
    """Letters, digits and punctuation in a font, thick and thin: none looks like a bar, noise or specks."""
    for text, size in (("Hello, world.", 34), ("a", 40), ("2 20, (17)", 30), ("mm", 60)):
        mask = np.asarray(written(text, size=(520, 80), font_size=size)) < 128
        assert preprocess.not_writing(mask) is None, text
    assert preprocess.not_writing(np.zeros((10, 10), bool)) is None


def test_text_reader_reads_a_page_line_by_line(tmp_path):
    import torch

    torch.manual_seed(0)
    path = crnn.save_reader(tmp_path / "lines.pt", crnn.CRNN(channels=(8, 16, 16, 32), hidden=16, layers=1))
    reader = crnn.TextReader(path)
    picture, _ = page.compose_page([written("one"), written("two two")], seed=0)
    results = reader.read_page(picture)
    assert len(results) == 2 and all(r.box is not None for r in results)
    assert set(results[0].to_dict()) == {"text", "confidence", "unsure", "box"}


# --- Peers' scoring ---------------------------------------------------------------------------


def test_a_page_stops_between_lines_once_told_to(tmp_path, monkeypatch):
    import threading

    path = crnn.save_reader(tmp_path / "lines.pt", crnn.CRNN(channels=(8, 16, 16, 32), hidden=16, layers=1))
    reader = crnn.TextReader(path)
    picture, _ = page.compose_page([written("one"), written("two two"), written("three")], seed=0)
    stop, read = threading.Event(), []
    real_read = reader._read_one

    def read_one(image):
        read.append(image)
        stop.set()  # the client hangs up while the first line is read
        return real_read(image)

    monkeypatch.setattr(reader, "_read_one", read_one)
    with pytest.raises(HCRError, match="^The reading stopped before the end because the request was withdrawn"):
        reader.read_page(picture, stop=stop)
    assert len(read) == 1


def test_peer_outputs_are_folded_and_scored_like_ours():
    from benchmarks import peers

    assert peers.fold_output("l\u2019homme \u2014 \u00ab oui \u00bb") == "l'homme - \" oui \""
    assert peers.fold_output(None) == ""

    class Echo:
        def read(self, path):
            return {"a": "Le chat", "b": "rue", "c": "\u201cOui\u201d"}[path]

    items = [("a", "Le chat", "x"), ("b", "rue.", "x"), ("c", '"Oui"', "y")]
    result = peers.score_engine(Echo(), items)
    assert result["lines"] == 3 and result["cer"] == pytest.approx(100 / 16, abs=0.01)
    assert result["by_collection"]["x"]["cer"] == pytest.approx(100 / 11, abs=0.01)
    assert result["by_collection"]["y"]["cer"] == 0
    assert result["word_acc"] == pytest.approx(100 * 3 / 4)


def test_a_tesseract_model_that_is_not_installed_is_named_with_its_package(monkeypatch):
    """The French engine is reported missing, with the package to install, when only English is there;
    and each engine asks tesseract for its own model."""
    import subprocess
    from types import SimpleNamespace

    from benchmarks import peers

    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        out = {"--list-langs": "List of available languages (2):\neng\nosd\n", "--version": "tesseract 5.3.0\n"}
        return SimpleNamespace(stdout=out.get(command[1], " Bonjour   tout\n"))

    monkeypatch.setattr(peers.shutil, "which", lambda name: "/usr/bin/tesseract")
    monkeypatch.setattr(subprocess, "run", fake_run)
    english = peers.Tesseract()
    assert english.read("line.png") == "Bonjour tout"
    assert calls[-1][-2:] == ["-l", "eng"]
    with pytest.raises(HCRError, match="tesseract has no 'fra' model: apt-get install tesseract-ocr-fra"):
        peers.TesseractFrench()


def test_predict_text_prints_each_line_of_a_page(tmp_path, capsys):
    import json

    import torch

    from helpers import predict

    torch.manual_seed(0)
    model = crnn.CRNN(channels=(4, 4, 4, 4), hidden=8, layers=1)
    with torch.no_grad():  # a reader that reads every line as "q"
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[alphabet.encode("q")[0]] = 10.0
    checkpoint = crnn.save_reader(tmp_path / "lines.pt", model)
    picture, _ = page.compose_page([written("first line"), written("second"), written("third one")], seed=2)
    picture.save(tmp_path / "page.png")
    Image.new("L", (300, 200), 240).save(tmp_path / "blank.png")
    code = predict.main(["--text", "--json", "--checkpoint", str(checkpoint), str(tmp_path / "page.png"),
                         str(tmp_path / "blank.png")])
    out, err = capsys.readouterr()
    (answer,) = [json.loads(line) for line in out.splitlines()]
    assert len(answer["lines"]) == 3 and answer["text"] == "q\nq\nq"
    assert all(len(line["box"]) == 4 for line in answer["lines"])
    assert code == 1 and "blank.png shows no writing" in err and "Traceback" not in err
    predict.main(["--text", "--checkpoint", str(checkpoint), str(tmp_path / "page.png")])
    assert capsys.readouterr().out.splitlines()[1].startswith(f"{tmp_path / 'page.png'} line 2: q")


def test_the_readme_credits_every_collection_the_line_reader_learned_from():
    """CC BY asks for attribution wherever something trained on the lines ships: each collection's
    repository, as the data's README names it, is credited in ours."""
    import re

    from helpers import paths

    data_readme = real_lines.folder() / "README.md"
    if not data_readme.is_file():
        pytest.skip("the real lines' README is not here (set HCR_DATA_DIR)")
    credits = (paths.PROJECT_DIR / "README.md").read_text().split("## Credits", 1)[-1]
    repositories = set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", data_readme.read_text()))
    assert repositories and all(url in credits for url in repositories), repositories - set(
        re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", credits))
    assert "CC BY 4.0" in credits and "Archives nationales" in credits


def test_a_scan_pasted_on_white_is_still_read(tmp_path):
    """Faint lines on their own grey paper, pasted on a white page (a screenshot, a scan with margins):
    the ink is found inside the paper, not the paper on the white."""
    pictures = [Image.new("L", (420, 64), 225) for _ in range(3)]
    for k, picture in enumerate(pictures):
        ImageDraw.Draw(picture).text((12, 8), ["hello world", "second line", "third"][k], fill=170,  # faint ink
                                     font=ImageFont.load_default(size=40))
    sheet = Image.new("L", (460, 3 * 64 + 4 * 12), 255)  # most of it paper, the rest white
    for k, picture in enumerate(pictures):
        sheet.paste(picture, (20, 12 + k * 76))
    found = page.page_lines(np.asarray(sheet), height=framing.LINE_HEIGHT)
    assert len(found) == 3
    tops = [f.box[1] for f in found]
    assert tops == sorted(tops) and all(12 <= t < 12 + 3 * 76 for t in tops)


def test_a_line_far_longer_than_any_writing_is_refused_in_one_sentence_not_called_blank(tmp_path):
    """Shrunk to the working size, a 60 px line 63,000 px long would be 2 px tall and look blank; an array
    as wide would be read for minutes in gigabytes. Both get one sentence that says what to do."""
    from helpers import predict

    long_line = Image.new("L", (30_000, 60), 255)
    ImageDraw.Draw(long_line).text((5, 5), "hello world " * 150, fill=0, font=ImageFont.load_default(size=40))
    long_line.save(tmp_path / "long.png")
    for source in (tmp_path / "long.png", np.random.default_rng(0).random((48, 100_000))):
        with pytest.raises(HCRError, match="longer than any line of writing: cut it into shorter pieces"):
            page.page_lines(source)
        with pytest.raises(HCRError, match="longer than any line of writing"):
            preprocess.prepare_line(source)
    assert predict.main(["--text", str(tmp_path / "long.png")]) != 0


def test_a_big_array_is_shrunk_like_a_file_of_the_same_picture():
    picture = written("hello", size=(4200, 300), font_size=200)
    from_array = preprocess.to_grey(np.asarray(picture), working_side=1024)
    from_file = preprocess.to_grey(picture, working_side=1024)
    assert from_array.shape == from_file.shape and np.abs(from_array - from_file).mean() < 0.01

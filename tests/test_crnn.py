"""The line reader: CRNN shapes, CTC, greedy decoding, scores, training, checkpoints and TextReader."""

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from helpers import crnn, line_training, lines
from helpers.errors import HCRError

from .test_lines import font_images, png, written_line


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return crnn.CRNN(channels=(8, 16, 16, 32), hidden=32, layers=1, dropout=0.0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine two threads wait
    on each other: measured 2.3 s against 5 ms per training step while other jobs ran."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bank():
    return lines.CharacterBank.from_images(*font_images())


# --- Shapes and CTC ---------------------------------------------------------------------------


@pytest.mark.parametrize("height", [32, 48])
def test_crnn_gives_one_column_per_four_pixels(height):
    model = crnn.CRNN(height=height, channels=(8, 16, 16, 32), hidden=16).eval()
    for width in (32, 130, 257):
        out = model(torch.zeros(2, 1, height, width))
        assert out.shape == (2, width // 4, lines.NUM_CTC_CLASSES)
    assert crnn.frames(torch.tensor([32, 130])).tolist() == [8, 32]


@pytest.mark.parametrize("field, value", [("dropout", 2), ("channels", [8, 16]), ("layers", 0), ("hidden", -5),
                                          ("height", 40), ("channels", [8, 16, 16, 2_000_000]), ("hidden", True)])
def test_crnn_config_is_checked_before_anything_is_built(field, value):
    config = {"num_classes": lines.NUM_CTC_CLASSES, "height": 48, "channels": [8, 16, 16, 32], "hidden": 16,
              "layers": 1, "dropout": 0.1, field: value}
    with pytest.raises(HCRError, match=field):
        crnn.check_config(config)
    with pytest.raises(HCRError, match="unknown fields"):
        crnn.check_config({**config, field: crnn.CRNN().config[field], "sequence": "gru"})


def test_a_line_reads_the_same_whatever_shares_its_batch(bank):
    rng = np.random.default_rng(0)
    texts = ["ab", "a much longer line 12"]
    images = [lines.make_line(t, bank, rng) for t in texts]
    model = tiny_model(1).eval()
    alone = crnn.read_lines(model, lines.LineSet.from_images(images[:1], texts[:1]))[0]
    together = crnn.read_lines(model, lines.LineSet.from_images(images, texts))[0]
    assert alone[0] == together[0] and alone[1] == pytest.approx(together[1], rel=1e-4)


def test_pixel_batches_stay_within_their_budget():
    widths = torch.tensor([40, 2000, 60, 900, 50, 3000, 70])
    batches = crnn.pixel_batches(widths, 48, max_pixels=48 * 3000)
    assert sorted(i for b in batches for i in b.tolist()) == list(range(7))
    for b in batches:
        assert len(b) == 1 or len(b) * int(widths[b].max()) * 48 <= 48 * 3000


def test_ctc_loss_uses_each_lines_own_width():
    torch.manual_seed(0)
    logits = torch.randn(2, 20, lines.NUM_CTC_CLASSES)
    widths = torch.tensor([80, 40])  # 20 and 10 columns: the second line's last 10 are padding
    targets = torch.tensor(lines.encode("abc") + lines.encode("Ok"))
    lengths = torch.tensor([3, 2])
    loss = crnn.ctc_loss(logits, widths, targets, lengths)
    single = []
    for row, (n, t) in enumerate(((20, targets[:3]), (10, targets[3:]))):
        lp = F.log_softmax(logits[row : row + 1, :n], 2).transpose(0, 1)
        total = F.ctc_loss(lp, t[None], torch.tensor([n]), torch.tensor([len(t)]), reduction="sum")
        single.append(total / len(t))  # per character, as crnn.ctc_loss averages
    assert loss.item() == pytest.approx(torch.stack(single).mean().item(), rel=1e-5)
    changed = logits.clone()
    changed[1, 10:] = 100.0  # what the padding columns say does not matter
    assert crnn.ctc_loss(changed, widths, targets, lengths).item() == pytest.approx(loss.item(), rel=1e-5)


def test_greedy_decode_merges_repeats_and_drops_blanks():
    a, b = lines.encode("a")[0], lines.encode("b")[0]
    path = [a, a, 0, a, b, b, 0]
    probs = [0.9, 0.6, 0.99, 0.7, 0.8, 0.95, 0.9]
    logits = torch.full((1, len(path), lines.NUM_CTC_CLASSES), -20.0)
    for t, (k, p) in enumerate(zip(path, probs)):
        logits[0, t, k] = 0.0
        logits[0, t, (k + 5) % lines.NUM_CTC_CLASSES] = float(np.log((1 - p) / p))  # leave 1-p elsewhere
    (text, confidence, char_probs), = crnn.greedy_decode(logits)
    assert text == "aab"
    assert char_probs == pytest.approx([0.9, 0.7, 0.95], abs=1e-4)
    assert confidence == pytest.approx(0.7, abs=1e-4)
    (short, _, _), = crnn.greedy_decode(logits, torch.tensor([12]))  # 3 columns only
    assert short == "a"


# --- Scores -------------------------------------------------------------------------------------


def test_cer_word_and_line_accuracy_on_hand_examples():
    assert crnn.cer("sitting", "kitten") == pytest.approx(3 / 6)
    assert crnn.cer("kitten", "sitting") == pytest.approx(3 / 7)
    assert crnn.cer(["ab", "c"], ["abc", "c"]) == pytest.approx(1 / 4)  # summed over lines
    assert crnn.cer("hello", "Hello") == pytest.approx(1 / 5)
    assert crnn.cer("hello", "Hello", ignore_case=True) == 0
    assert crnn.word_accuracy("the cat sat", "the cat sat down") == pytest.approx(3 / 4)
    assert crnn.word_accuracy("teh cat", "the cat") == pytest.approx(1 / 2)
    assert crnn.word_accuracy(["Room 101", "A4"], ["Room 1O1", "A4"]) == pytest.approx(2 / 3)
    assert crnn.line_accuracy(["Room 101", "a4 "], ["Room 101", "A4"]) == 0.5
    assert crnn.line_accuracy(["Room 101", "a4 "], ["Room 101", "A4"], ignore_case=True) == 1.0
    s = crnn.score(["ab"], ["abc"])
    assert s["cer"] == pytest.approx(100 / 3) and s["lines"] == 1


# --- Learning ------------------------------------------------------------------------------------


def test_a_tiny_crnn_learns_to_read_a_few_lines(bank):
    texts = ["ab 12", "Cd", "xY 7", "room"]
    rng = np.random.default_rng(0)
    line_set = lines.LineSet.from_images([lines.make_line(t, bank, rng) for t in texts], texts)
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, widths, targets, lengths = line_set.batch(range(len(texts)))
    for step in range(1, 601):  # usually ~250 steps; the exact number differs between CPUs' float rounding
        model.train()
        loss = crnn.ctc_loss(model(x), widths, targets, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 200 and step % 50 == 0:
            readings = crnn.read_lines(model, line_set)
            if [text for text, _, _ in readings] == texts and all(c > 0.5 for _, c, _ in readings):
                break
    assert [text for text, _, _ in readings] == texts
    assert all(confidence > 0.5 for _, confidence, _ in readings)


def test_train_lines_is_seeded_mixes_its_parts_and_keeps_the_best(bank):
    train = lines.make_line_set(bank, 16, "train", seed=0, max_chars=6)
    other = lines.make_line_set(bank, 8, "train", seed=1, max_chars=6)
    val = lines.make_line_set(bank, 4, "test", seed=0, max_chars=6)
    runs = []
    for _ in range(2):
        model = tiny_model()
        history = line_training.train_lines(model, [(train, 0.7), (other, 0.3)], val, steps=6, lr=3e-3, seed=1,
                                   eval_every=1e9, progress=False, log=None)
        runs.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    row = history.evaluations[-1]
    assert {"step", "seconds", "val_cer", "val_cer_ignore_case", "val_word_acc", "val_line_acc"} <= set(row)
    assert history.steps == 6 and history.train_seconds > 0 and not model.training
    assert history.best["val_cer"] == min(r["val_cer"] for r in history.evaluations)
    with pytest.raises(HCRError, match="budget"):
        line_training.train_lines(tiny_model(), [(train, 1.0)], progress=False, log=None)


def test_macro_cer_counts_every_collection_alike():
    truths, readings = ["abcd", "abcd", "abcd", "xy"], ["abcd", "abcd", "abcd", "x"]
    assert crnn.macro_cer(readings, truths, ["big"] * 3 + ["small"]) == pytest.approx(100 * (0 + 0.5) / 2)
    assert crnn.cer_by_group(readings, truths, ["big"] * 3 + ["small"]) == {"big": 0.0, "small": 50.0}
    assert crnn.cer(readings, truths) == pytest.approx(1 / 14)  # the plain CER barely sees the small one


def test_train_lines_can_keep_the_weights_that_read_every_collection_best(bank):
    from dataclasses import replace

    train = lines.make_line_set(bank, 8, "train", seed=0, max_chars=6)
    val = replace(lines.make_line_set(bank, 4, "test", seed=0, max_chars=6), groups=["a", "a", "a", "b"])
    history = line_training.train_lines(tiny_model(), [(train, 1.0)], val, steps=2, lr=3e-3, seed=1, eval_every=1e9,
                               progress=False, log=None, choose_by="val_macro_cer")
    assert "val_macro_cer" in history.best
    assert history.best["val_macro_cer"] == min(r["val_macro_cer"] for r in history.evaluations)


def test_running_mean_of_weights_is_their_mean():
    states = [{"w": torch.full((2, 2), float(k)), "n": torch.tensor(k)} for k in (1, 2, 6)]
    average = None
    for n, state in enumerate(states, 1):
        average = line_training.running_mean(average, state, n)
    assert torch.allclose(average["w"], torch.full((2, 2), 3.0)) and int(average["n"]) == 1
    assert states[0]["w"][0, 0] == 1  # the first state is copied, not changed


def test_train_lines_averages_the_weights_of_the_last_part_of_its_budget(bank):
    train = lines.make_line_set(bank, 8, "train", seed=0, max_chars=6)
    val = lines.make_line_set(bank, 4, "test", seed=0, max_chars=6)
    model, said = tiny_model(), []
    history = line_training.train_lines(model, [(train, 1.0)], val, steps=6, lr=3e-3, seed=1, eval_every=1e9,
                               progress=False, log=said.append, average_from=0.5)
    assert history.averaged["averaged_steps"] == 4  # steps 3 to 6: from half the budget on
    assert said[-1].startswith("step 6") and "the mean of the last 4 steps, val CER" in said[-1]
    assert history.best["val_cer"] <= history.averaged["val_cer"]
    assert history.best["val_cer"] == min(r["val_cer"] for r in history.evaluations + [history.averaged])
    plain = line_training.train_lines(tiny_model(), [(train, 1.0)], val, steps=6, lr=3e-3, seed=1, eval_every=1e9,
                             progress=False, log=None)
    with pytest.raises(HCRError, match="not a share of the budget"):
        line_training.train_lines(tiny_model(), [(train, 1.0)], val, steps=2, progress=False, log=None, average_from=50)
    assert plain.averaged is None  # and averaging changes no step:
    steps_and_scores = [[(r["step"], r["val_cer"]) for r in h.evaluations] for h in (plain, history)]
    assert steps_and_scores[0] == steps_and_scores[1]


def test_averaged_weights_that_read_val_best_are_the_ones_kept(bank, monkeypatch):
    train = lines.make_line_set(bank, 8, "train", seed=0, max_chars=6)
    val = lines.make_line_set(bank, 4, "test", seed=0, max_chars=6)
    real_mean, real_evaluate, kept = line_training.running_mean, crnn.evaluate_lines, {}

    def mean(average, state, n):
        kept["average"] = real_mean(average, state, n)
        return kept["average"]

    def evaluate(model, line_set, device=None):  # the averaged weights (read last) read val best
        scores = real_evaluate(model, line_set, device)
        return scores | {"cer": 10.0 if kept.get("reading_average") else 90.0}

    monkeypatch.setattr(line_training, "running_mean", mean)
    monkeypatch.setattr(line_training, "evaluate_lines", evaluate)
    real_score = line_training._score_average
    monkeypatch.setattr(line_training, "_score_average",
                        lambda *a: (kept.update(reading_average=True), real_score(*a))[1])
    model = tiny_model()
    history = line_training.train_lines(model, [(train, 1.0)], val, steps=4, lr=3e-3, seed=1, eval_every=1e9,
                               progress=False, log=None, average_from=0.5)
    assert history.best is history.averaged and history.best["val_cer"] == 10.0
    assert all(torch.allclose(v, kept["average"][k]) for k, v in model.state_dict().items() if v.is_floating_point())


def test_mixed_order_draws_each_part_by_its_weight():
    a = lines.LineSet.from_images([np.zeros((48, 60), np.float32)] * 10, ["a"] * 10)
    b = lines.LineSet.from_images([np.zeros((48, 60), np.float32)] * 5, ["b"] * 5)
    order = line_training._mixed_order([(a, 0.8), (b, 0.2)], 5000, torch.Generator().manual_seed(0))
    share = float((order < 10).float().mean())
    assert 0.77 < share < 0.83 and int(order.max()) < 15


# --- Checkpoints and the reader ---------------------------------------------------------------


def test_reader_checkpoint_round_trip(tmp_path):
    model = tiny_model()
    path = crnn.save_reader(tmp_path / "lines.pt", model, metrics={"cer": 12.5})
    loaded, info = crnn.load_reader(path)
    assert info["metrics"] == {"cer": 12.5} and info["model"] == "crnn"
    x = torch.rand(1, 1, lines.HEIGHT, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_a_fine_tune_is_saved_only_with_a_half_point_lead_on_val(tmp_path):
    model = tiny_model()
    start = crnn.save_reader(tmp_path / "start.pt", model, metrics={"best": {"val_cer": 20.0}})
    out = tmp_path / "runs" / "lines.pt"
    saved, message = crnn.save_if_better(out, model, line_training.LineHistory(best={"val_cer": 19.7}), start)
    assert not saved and not out.exists() and "under 0.5 points" in message
    saved, message = crnn.save_if_better(out, model, line_training.LineHistory(best={"val_cer": 19.4}), start)
    assert saved and "19.40% against 20.00%" in message
    assert crnn.load_reader(out)[1]["metrics"]["fine_tuned_from"] == str(start)
    unscored = crnn.save_reader(tmp_path / "unscored.pt", model)  # nothing to beat: saved
    assert crnn.save_if_better(tmp_path / "b.pt", model, line_training.LineHistory(best={"val_cer": 50.0}), unscored)[0]
    assert not crnn.save_if_better(tmp_path / "c.pt", model, line_training.LineHistory(), start)[0]


def test_a_config_larger_than_its_weights_is_refused_before_the_model_is_built(tmp_path, monkeypatch):
    """A file may claim a reader of gigabytes beside a few kB of weights: the shapes are compared first."""
    from helpers import checkpoint

    payload = checkpoint.read_checkpoint(crnn.save_reader(tmp_path / "lines.pt", tiny_model()))
    payload["extra"]["config"].update(hidden=2048, layers=8, channels=[1024] * 4)
    checkpoint.save_payload(tmp_path / "huge.pt", payload)
    built = []
    real_init = crnn.CRNN.__init__
    monkeypatch.setattr(crnn.CRNN, "__init__", lambda self, *a, **k: built.append(torch.get_default_device())
                        or real_init(self, *a, **k))
    with pytest.raises(HCRError, match="weights do not fit"):
        crnn.load_reader(tmp_path / "huge.pt")
    assert [d.type for d in built] == ["meta"]  # only the shapes were built


def test_load_reader_refuses_other_files(tmp_path, tiny_checkpoint):
    with pytest.raises(HCRError, match="single characters, not lines"):
        crnn.load_reader(tiny_checkpoint)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(HCRError, match="not a checkpoint"):
        crnn.load_reader(tmp_path / "junk.pt")
    with pytest.raises(HCRError, match="No checkpoint"):
        crnn.load_reader(tmp_path / "missing.pt")
    payload = torch.load(crnn.save_reader(tmp_path / "edited.pt", tiny_model()), weights_only=True)
    payload["state_dict"].pop("head.bias")
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(HCRError, match="damaged|weights do not fit"):  # the stored SHA-256 no longer matches
        crnn.load_reader(tmp_path / "edited.pt")


def test_start_from_copies_a_reader_into_another_height_size_or_alphabet(tmp_path):
    from helpers import checkpoint

    source = tiny_model(seed=1)
    path = crnn.save_reader(tmp_path / "source.pt", source)
    taller = crnn.CRNN(height=48, channels=(8, 16, 16, 32), hidden=32, layers=1, dropout=0.0)
    line_training.start_from(taller, path)  # the rows are pooled to two whatever the height: every weight fits
    assert all(torch.equal(a, b) for a, b in zip(taller.state_dict().values(), source.state_dict().values()))

    narrower = crnn.CRNN(channels=(8, 16, 16, 32), hidden=16, layers=1, dropout=0.0)
    with pytest.raises(HCRError, match="another shape"):
        line_training.start_from(narrower, path)
    wider = crnn.CRNN(channels=(8, 16, 16, 32), hidden=64, layers=1, dropout=0.0)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    line_training.start_from(wider, path, fresh=("sequence.", "head."))
    for key, value in wider.state_dict().items():
        if key.startswith(("sequence.", "head.")):
            assert torch.equal(value, before[key]), key  # left as it was
        else:
            assert torch.equal(value, source.state_dict()[key]), key  # the trained CNN

    payload = torch.load(path, weights_only=True)  # a reader that knew only the first 40 characters
    payload["class_names"] = payload["class_names"][:40]
    payload["state_dict"]["head.weight"] = payload["state_dict"]["head.weight"][:40]
    payload["state_dict"]["head.bias"] = payload["state_dict"]["head.bias"][:40]
    payload["num_classes"] = 40
    payload.pop("weights_sha256", None)
    older = checkpoint.save_payload(tmp_path / "older.pt", payload)
    grown = tiny_model(seed=2)
    line_training.start_from(grown, older)
    assert torch.equal(grown.head.weight[:40], source.head.weight[:40])
    assert not torch.equal(grown.head.weight[40:], source.head.weight[40:])

    payload["class_names"] = ["<blank>"] + list(reversed(lines.ALPHABET))[:39]
    alien = checkpoint.save_payload(tmp_path / "alien.pt", payload)
    with pytest.raises(HCRError, match="alphabet"):
        line_training.start_from(tiny_model(), alien)


@pytest.mark.parametrize("layers", [1, 2])
def test_a_wider_lstm_starts_reading_exactly_as_the_narrower_one(tmp_path, layers):
    torch.manual_seed(layers)
    narrow = crnn.CRNN(channels=(8, 16, 16, 32), hidden=16, layers=layers, dropout=0.0)
    path = crnn.save_reader(tmp_path / "narrow.pt", narrow)
    wide = crnn.CRNN(channels=(8, 16, 16, 32), hidden=40, layers=layers, dropout=0.0)
    line_training.start_from(wide, path)
    x = torch.rand(2, 1, narrow.height, 96)
    with torch.no_grad():
        assert torch.allclose(wide.eval()(x), narrow.eval()(x), atol=1e-5)
    assert wide.sequence.weight_hh_l0[16:40].abs().sum() > 0  # the new units' gates are not all zero ...
    assert wide.head.weight[:, 16:40].abs().sum() == 0  # ... but pass nothing on, yet
    loss = wide.train()(x).logsumexp(-1).mean()
    loss.backward()
    assert wide.head.weight.grad[:, 16:40].abs().sum() > 0  # so training can grow them


def test_text_reader_reads_pictures_and_gives_one_error_per_bad_one(tmp_path):
    path = crnn.save_reader(tmp_path / "lines.pt", tiny_model())
    reader = crnn.TextReader(path)
    result = reader.read(png(written_line()))
    assert isinstance(result.text, str) and 0 <= result.confidence <= 1 and isinstance(result.unsure, bool)
    assert result.image.shape[0] == lines.HEIGHT
    assert set(result.to_dict("x.png")) == {"path", "text", "confidence", "unsure"}
    blank = io.BytesIO()
    Image.new("L", (300, 60), 250).save(blank, format="PNG")
    sources = [png(written_line()), blank.getvalue(), b"\x89PNG broken", np.asarray(written_line("A4"))]
    results = reader.read_many(sources)
    assert [type(r).__name__ for _, r in results] == ["TextResult", "HCRError", "HCRError", "TextResult"]
    assert "shows no writing" in str(results[1][1]) and "\n" not in str(results[2][1])
    with pytest.raises(HCRError, match="shows no writing"):
        reader.read(blank.getvalue())
    line = np.asarray(written_line())
    copy = crnn.CRNN(**reader.model.config)  # a second model in memory, with the file's weights, reads the same
    copy.load_state_dict(reader.model.state_dict())
    assert crnn.TextReader.from_model(copy).read(line).text == reader.read(line).text


def test_line_augmentation_is_seeded_keeps_range_and_grows_with_its_strength():
    from helpers.augment import augment_lines

    x = torch.zeros(16, 1, lines.HEIGHT, 160)
    x[:, :, 10:20, 20:140] = 1.0  # a bar of ink
    change = {}
    for strength in (0.0, 0.5, 1.0, 1.5):
        a = augment_lines(x.clone(), torch.Generator().manual_seed(3), strength)
        b = augment_lines(x.clone(), torch.Generator().manual_seed(3), strength)
        assert a.shape == x.shape and torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
        change[strength] = (a - x).abs().mean().item()
    assert change[0.0] == 0 < change[0.5] < change[1.0] < change[1.5]


def test_degraded_lines_look_binarised_blurred_or_shrunk_and_are_seeded():
    from helpers.augment import augment_lines, degrade

    x = torch.zeros(6, 1, lines.HEIGHT, 160)
    x[:, :, 10:20, 20:140] = 0.7  # a bar of grey ink
    x[:, :, 14:16, 20:140] = 1.0
    assert torch.equal(augment_lines(x.clone(), torch.Generator().manual_seed(0), 0.0, degraded=0.0), x)
    a = augment_lines(x.clone(), torch.Generator().manual_seed(5), 0.0, degraded=0.5)
    assert torch.equal(a, augment_lines(x.clone(), torch.Generator().manual_seed(5), 0.0, degraded=0.5))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    binary = degrade(x.clone(), torch.Generator().manual_seed(1), p_binary=1.0, p_blur=0.0, p_low_res=0.0)
    assert set(binary.unique().tolist()) == {0.0, 1.0} and binary[:, :, 15, 80].eq(1).all()
    blurred = degrade(x.clone(), torch.Generator().manual_seed(1), p_binary=0.0, p_blur=1.0, p_low_res=0.0)
    assert blurred[:, :, 8, 80].gt(0).all() and blurred.amax() == pytest.approx(1.0)  # soft edges, full-strength ink
    shrunk = degrade(x.clone(), torch.Generator().manual_seed(1), p_binary=0.0, p_blur=0.0, p_low_res=1.0)
    assert shrunk.shape == x.shape and not torch.equal(shrunk, x)


def test_a_reader_refuses_lines_of_another_height():
    model = crnn.CRNN(height=48, channels=(8, 16, 16, 32), hidden=16).eval()
    with pytest.raises(HCRError, match="height=48"):
        model(torch.zeros(1, 1, 32, 64))


def test_your_own_reader_is_used_only_while_it_is_newer_than_the_shipped_one(tmp_path, monkeypatch):
    """a fine-tune of an older shipped reader must not hide a newer shipped one after an update."""
    import os

    shipped, trained = tmp_path / "checkpoints" / "lines.pt", tmp_path / "runs" / "lines.pt"
    monkeypatch.setattr(crnn, "SHIPPED", shipped)
    monkeypatch.setattr(crnn, "TRAINED", trained)
    shipped.parent.mkdir()
    shipped.write_bytes(b"shipped")
    assert crnn.default_reader_checkpoint() == shipped  # nothing trained yet
    trained.parent.mkdir()
    trained.write_bytes(b"trained")
    os.utime(shipped, (1_000, 1_000))
    os.utime(trained, (2_000, 2_000))
    assert crnn.default_reader_checkpoint() == trained  # fine-tuned after the shipped one came
    os.utime(shipped, (3_000, 3_000))
    assert crnn.default_reader_checkpoint() == shipped  # an update brought a newer shipped reader

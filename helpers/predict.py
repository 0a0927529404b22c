"""Predict the character in images, from Python or the command line.

    python -m helpers.predict IMAGE [IMAGE ...] [--json] [--case-sensitive | --text] [--checkpoint PATH]

Each image goes through `preprocess.prepare`, the same framing the model was trained on; with
--text each image is a line or a page of writing: split into lines (`page.page_lines`) and each
line read by the CRNN, in reading order.
A bad file gets one line on stderr and a non-zero exit status; the others are still answered.
"""

import argparse
import contextlib
import errno
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as checkpoints
from .checkpoint import default_checkpoint, load_checkpoint
from .errors import HCRError
from .labels import CASE_CLASS_NAMES, CLASS_NAMES
from .paths import shown
from .preprocess import picture_label, prepare

# Below this top probability an answer is marked "unsure". A display choice, so that a photo
# without a clear character does not read as a confident answer; not tuned on any data set.
UNSURE_BELOW = 0.5


@dataclass
class Prediction:
    label: str
    confidence: float
    top3: list  # [(label, probability), ...], most likely first
    image: np.ndarray = field(repr=False)  # the 28x28 input the model saw
    unsure: bool = False  # confidence below UNSURE_BELOW: the model is guessing

    def to_dict(self, path=None):
        out = {"path": path} if path is not None else {}
        out.update(label=self.label, confidence=round(self.confidence, 6),
                   top3=[[label, round(p, 6)] for label, p in self.top3], unsure=self.unsure)
        return out


def _case_model_missing():
    return HCRError(
        f"The case-sensitive model is missing (neither {_short(checkpoints.TRAINED_CASE)} nor "
        f"{_short(checkpoints.SHIPPED_CASE)} exists): get checkpoints/case.pt from the project's repository, "
        "where it ships with the code, or train one in the notebook's upper-and-lower-case section."
    )


class Predictor:
    """A trained model plus the preprocessing it expects; load once, predict many times.

    `case_sensitive=True` picks the 62-class model (0-9, A-Z, a-z) instead of the 36-class one
    (0-9, A-Z). An explicit `checkpoint` overrides the choice of file; the labels always come
    from the checkpoint's own class names. `text=True` reads each picture as a whole line of
    text instead (the CRNN of `helpers.crnn`): `predict` then returns a `crnn.TextResult`.
    """

    def __new__(cls, checkpoint=None, device="cpu", case_sensitive=False, text=False):
        if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
            raise HCRError(f"checkpoint={checkpoint!r} is not a path: pass the path of a .pt file, or nothing for "
                           "the shipped model.")
        if device is not None and not isinstance(device, torch.device):
            from .hardware import pick_device

            pick_device(str(device))  # an unknown device name is one sentence here, not a RuntimeError later
        if text:  # a whole line of text: the CRNN reader, with the same predict / predict_many
            if case_sensitive:
                raise HCRError("Lines are always read with case: drop case_sensitive (or --case-sensitive) with text.")
            return line_reader(checkpoint, device)
        return super().__new__(cls)

    def __init__(self, checkpoint=None, device="cpu", case_sensitive=False, text=False):
        expected = CASE_CLASS_NAMES if case_sensitive else None
        if checkpoint is None:
            checkpoint = default_checkpoint(case_sensitive)
            expected = CASE_CLASS_NAMES if case_sensitive else CLASS_NAMES
            if case_sensitive and not Path(checkpoint).is_file():
                raise _case_model_missing()
        self.path = checkpoint
        self.model, self.info = load_checkpoint(checkpoint, class_names=expected, device=device)
        self.device = torch.device(device)
        self.class_names = tuple(self.info["class_names"])
        self.logit_bias = checkpoints.stored_bias(self.info, checkpoint)  # checked by load_checkpoint

    @classmethod
    def from_model(cls, model, digit_prior=0.0, device="cpu", class_names=CLASS_NAMES, logit_bias=None):
        """Wrap a model trained in this session (the notebook's), no file needed."""
        predictor = cls.__new__(cls)
        predictor.path, predictor.info = "(in memory)", {}
        predictor.device = torch.device(device)
        predictor.model = model.to(predictor.device).eval()
        predictor.class_names = tuple(class_names)
        predictor.logit_bias = checkpoints.class_bias(logit_bias, digit_prior, len(predictor.class_names), "the model")
        return predictor

    @torch.no_grad()
    def _scores(self, images):
        """(probabilities (N, classes), finite (N,)): rows whose logits are not all finite are marked."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).reshape(-1, 1, 28, 28)
        logits = self.model(x.to(self.device))
        if logits.is_complex():  # a model built in memory with complex weights
            logits = torch.full(logits.shape, float("nan"))
        logits = logits.float().cpu()
        if self.logit_bias is not None:
            logits = logits + self.logit_bias
        finite = torch.isfinite(logits).all(dim=1)
        probs = torch.softmax(torch.where(finite[:, None], logits, torch.zeros_like(logits)), dim=1)
        return probs.numpy(), finite.numpy()

    def _not_a_number(self, label):
        return HCRError(f"The model's answer for {label} is not a finite number (its weights overflow), so there "
                        f"is no answer: the checkpoint {self.path} is damaged or was crafted; retrain the model or "
                        "use the shipped checkpoint.")

    def probabilities(self, images):
        """Class probabilities for prepared 28x28 float images, shape (N, number of classes).

        HCRError when the model's output for any image is not a finite number.
        """
        probs, finite = self._scores(images)
        if not finite.all():
            raise self._not_a_number("these images")
        return probs

    def _prediction(self, image, probs, k=3):
        order = np.argsort(-probs)[:k]
        top = [(self.class_names[i], float(probs[i])) for i in order]
        return Prediction(label=top[0][0], confidence=top[0][1], top3=top, image=image,
                          unsure=bool(top[0][1] < UNSURE_BELOW))

    def predict(self, source, name=None):
        """One image (path, bytes, PIL image or array) -> Prediction; HCRError if unusable."""
        check_source(source)
        image = prepare(source, name=name).image
        probs, finite = self._scores(image[None])
        if not finite[0]:
            raise self._not_a_number(picture_label(source, name))
        return self._prediction(image, probs[0])

    def predict_many(self, sources, batch_size=256):
        """[(source, Prediction or HCRError)], with one batched forward pass per batch.

        `sources` is a list (or any iterable) of pictures, never one picture on its own. A
        picture that cannot be used gets its HCRError; the others are still answered.
        """
        sources = check_sources(sources)
        batch_size = check_batch_size(batch_size)
        results = []
        for start in range(0, len(sources), batch_size):
            chunk = sources[start : start + batch_size]
            prepared = []
            for source in chunk:
                try:
                    check_source(source)
                    prepared.append((source, prepare(source).image))
                except HCRError as error:
                    prepared.append((source, error))
            good = [image for _, image in prepared if not isinstance(image, HCRError)]
            probs, finite = self._scores(np.stack(good)) if good else ([], [])
            rows = iter(zip(probs, finite))
            for source, image in prepared:
                if isinstance(image, HCRError):
                    results.append((source, image))
                    continue
                row, ok = next(rows)
                results.append((source, self._prediction(image, row) if ok else self._not_a_number(
                    picture_label(source, None))))
        return results


_PICTURE_TYPES = "a file path, the file's bytes, a PIL image or a numpy array"


def check_source(source):
    """Refuse, in one sentence naming its type, what cannot be a picture (None, a number, an open file)."""
    from PIL import Image

    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray)):
        return source
    kind = type(source).__name__
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        raise HCRError(f"Got an open file ({kind}) where a picture was expected: pass its path, or its bytes "
                       "(file.read()).")
    raise HCRError(f"Got {kind} ({str(source)[:40]!r}) where a picture was expected: pass {_PICTURE_TYPES}.")


def check_sources(sources):
    """A list of pictures; one picture on its own (a path, bytes, an array...) is refused, not split up."""
    from PIL import Image

    if isinstance(sources, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray)):
        raise HCRError(f"predict_many takes a list of pictures, not one {type(sources).__name__}: pass [picture], "
                       "or call predict(picture).")
    try:
        return list(sources)
    except TypeError:
        raise HCRError(f"predict_many takes a list of pictures, not {type(sources).__name__}: pass a list of "
                       f"{_PICTURE_TYPES}.") from None


def check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise HCRError(f"batch_size is {batch_size!r}, not a whole number of at least 1: pass 1 or more "
                       "(256 by default).")
    return int(batch_size)


_short = shown  # a project path as the user sees it in the repository (checkpoints/default.pt)


MODES = {"36": "36 classes (0-9, A-Z)", "case": "case-sensitive (0-9, A-Z, a-z)", "text": "a word or a line (text)"}


def load(mode="36", checkpoint=None, device="cpu"):
    """The model for a mode, "36", "case" or "text": the one way the command line, the web page and the pad load one.

    `checkpoint` None picks the default file (runs/ if you trained one, else checkpoints/).
    """
    if mode not in MODES:
        raise HCRError(f"There is no mode '{str(mode)[:20]}': use one of {', '.join(MODES)}.")
    return Predictor(checkpoint, device, case_sensitive=mode == "case", text=mode == "text")


def line_reader(checkpoint=None, device="cpu"):
    """`Predictor(text=True)`: a `crnn.TextReader`, which has the same `predict` / `predict_many`."""
    from .crnn import TextReader, default_reader_checkpoint

    path = checkpoint if checkpoint is not None else default_reader_checkpoint()
    if checkpoint is None and not Path(path).is_file():
        raise HCRError(
            f"The line-reading model is missing ({_short(path)}): get checkpoints/lines.pt from the "
            "project's repository, or train one in the lines chapter (Reading_Handwritten_Lines.ipynb)."
        )
    return TextReader(path, device)


def preview_data_url(image):
    """The 28x28 model input as a PNG data URL, for the drawing pad and the web page."""
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_data_url(url):
    """Bytes of a `data:image/...;base64,` URL as sent by a browser canvas."""
    import base64
    import binascii

    header, _, payload = url.partition(",")
    if not header.startswith("data:") or ";base64" not in header:
        raise HCRError("The drawing did not arrive as an image: reload the page and draw again.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise HCRError("The drawing arrived damaged: clear the pad and draw again.") from None


def answer(predictor, source, name=None, stop=None):
    """What the pad and the web page show: top-3 and the 28x28 input, or one error sentence.

    `stop` (a threading.Event) ends a page's reading between two lines (`TextReader.read_page`)."""
    try:
        if hasattr(predictor, "read_page"):  # the line reader: a line or a page, line by line
            return _page_answer(predictor.read_page(source, name=name, stop=stop))
        prediction = predictor.predict(source, name=name)
    except HCRError as error:
        return {"error": str(error)}
    return {**prediction.to_dict(), "preview": preview_data_url(prediction.image)}


def _page_answer(results):
    """Every line read from a picture, as the pad and the page show a line: the text (one line of
    writing per line of text), the least certain line's confidence, and the lines the model saw."""
    width = max(r.image.shape[1] for r in results)
    stacked = np.concatenate([np.pad(r.image, ((0, 0 if k == len(results) - 1 else 2), (0, width - r.image.shape[1])))
                              for k, r in enumerate(results)])
    return {"text": "\n".join(r.text for r in results), "confidence": round(min(r.confidence for r in results), 6),
            "unsure": any(r.unsure for r in results), "lines": [r.to_dict() for r in results],
            "preview": preview_data_url(stacked)}


def format_line(path, prediction):
    top = " | ".join(f"{label} {100 * p:5.1f}%" for label, p in prediction.top3)
    return f"{path}: {top}" + ("  (unsure)" if prediction.unsure else "")


def _write(stream, text):
    """One line on `stream`; what its encoding cannot hold (a file name that is not UTF-8) is escaped.

    OSError (a closed pipe, a full disk) reaches the caller, which stops writing.
    """
    try:
        stream.write(text + "\n")
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write((text + "\n").encode(encoding, "backslashreplace").decode(encoding, "replace"))
    stream.flush()


def _say(text):
    """An answer on stdout."""
    _write(sys.stdout, text)


def _complain(text):
    """An error sentence on stderr; if even stderr is gone there is no one left to tell."""
    with contextlib.suppress(OSError, ValueError):
        _write(sys.stderr, text)


def _silence_stdout():
    """After a closed pipe or a full disk: send what is still buffered nowhere, so the exit is quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _output_failed(exc):
    """The exit status after stdout failed: 0 for a reader that hung up (| head), 1 and a sentence otherwise."""
    _silence_stdout()
    if isinstance(exc, BrokenPipeError):
        return 0
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        _complain("error: the answers could not be written because the disk is full: free some space, or send "
                  "the output elsewhere.")
    else:
        _complain(f"error: the answers could not be written to standard output "
                  f"({exc.strerror or type(exc).__name__}): send the output to a file or a terminal that takes it.")
    return 1


def _read_pages(reader, paths, as_json):
    """--text: each picture (a line or a page) read line by line, in reading order."""
    failed = 0
    for path in paths:
        try:
            results = reader.read_page(path)
        except HCRError as error:
            failed += 1
            _complain(f"error: {error}")
            continue
        if as_json:
            _say(json.dumps({"path": path, "text": "\n".join(r.text for r in results),
                             "lines": [r.to_dict() for r in results]}))
        else:
            for k, r in enumerate(results, 1):
                where = f"{path}" if len(results) == 1 else f"{path} line {k}"
                _say(f"{where}: {r.text}  ({100 * r.confidence:.0f}%{', unsure' if r.unsure else ''})")
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m helpers.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="PNG or JPEG files, one character each (with --text: a line or a page of writing each)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line: path, label, confidence, top3, unsure "
                             "(with --text: path, text, and each line's text, confidence, unsure and box)")
    parser.add_argument("--text", action="store_true",
                        help="read each image as text: a word, a line, or a page of several lines")
    parser.add_argument("--case-sensitive", action="store_true",
                        help=f"tell upper and lower case apart: 62 classes 0-9, A-Z, a-z "
                             f"(model: {_short(default_checkpoint(True))})")
    parser.add_argument("--checkpoint", default=None,
                        help=f"model to use (default: {_short(default_checkpoint())})")
    args = parser.parse_args(argv)
    try:
        predictor = (Predictor(args.checkpoint, case_sensitive=True, text=True) if args.case_sensitive and args.text
                     else load("text" if args.text else "case" if args.case_sensitive else "36", args.checkpoint))
    except HCRError as error:
        _complain(f"error: {error}")
        return 2
    try:
        if args.text:
            return _read_pages(predictor, args.images, args.json)
        return _answer_characters(predictor, args.images, args.json)
    except OSError as exc:  # stdout: a closed pipe, a full disk
        return _output_failed(exc)


def _answer_characters(predictor, paths, as_json):
    failed = 0
    for path, result in predictor.predict_many(paths):
        if isinstance(result, HCRError):
            failed += 1
            _complain(f"error: {result}")
        elif as_json:
            _say(json.dumps(result.to_dict(path)))
        else:
            _say(format_line(path, result))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

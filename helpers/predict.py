"""Predict the character in images, from Python or the command line.

    python -m helpers.predict IMAGE [IMAGE ...] [--json] [--case-sensitive | --text] [--checkpoint PATH]

Each image goes through `preprocess.prepare`, the same framing the model was trained on; with
--text each image is a line or a page of writing: split into lines (`page.page_lines`) and each
line read by the CRNN, in reading order.
A bad file gets one line on stderr and a non-zero exit status; the others are still answered.
"""

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as checkpoints
from .checkpoint import default_checkpoint, load_checkpoint
from .errors import HCRError
from .evaluation import with_digit_prior
from .labels import CASE_CLASS_NAMES, CLASS_NAMES
from .paths import PROJECT_DIR
from .preprocess import prepare

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
        extra = self.info.get("extra", {})
        self.digit_prior = _digit_prior(extra.get("digit_prior", 0.0), checkpoint)
        self.logit_bias = _logit_bias(extra.get("logit_bias"), len(self.class_names), checkpoint)

    @classmethod
    def from_model(cls, model, digit_prior=0.0, device="cpu", class_names=CLASS_NAMES, logit_bias=None):
        """Wrap a model trained in this session (the notebook's), no file needed."""
        predictor = cls.__new__(cls)
        predictor.path, predictor.info = "(in memory)", {}
        predictor.device = torch.device(device)
        predictor.model = model.to(predictor.device).eval()
        predictor.class_names = tuple(class_names)
        predictor.digit_prior = _digit_prior(digit_prior, "the model")
        predictor.logit_bias = _logit_bias(logit_bias, len(predictor.class_names), "the model")
        return predictor

    @torch.no_grad()
    def probabilities(self, images):
        """Class probabilities for prepared 28x28 float images, shape (N, number of classes)."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).reshape(-1, 1, 28, 28)
        logits = with_digit_prior(self.model(x.to(self.device)).float().cpu(), self.digit_prior)
        if self.logit_bias is not None:
            logits = logits + self.logit_bias
        return torch.softmax(logits, dim=1).numpy()

    def _prediction(self, image, probs, k=3):
        order = np.argsort(-probs)[:k]
        top = [(self.class_names[i], float(probs[i])) for i in order]
        return Prediction(label=top[0][0], confidence=top[0][1], top3=top, image=image,
                          unsure=bool(top[0][1] < UNSURE_BELOW))

    def predict(self, source, name=None):
        """One image (path, bytes, PIL image or array) -> Prediction; HCRError if unusable."""
        image = prepare(source, name=name).image
        return self._prediction(image, self.probabilities(image[None])[0])

    def predict_many(self, sources, batch_size=256):
        """[(source, Prediction or HCRError)], with one batched forward pass per batch.

        A picture that cannot be used gets its HCRError; the others are still answered.
        """
        results = []
        for start in range(0, len(sources), batch_size):
            chunk = sources[start : start + batch_size]
            prepared = []
            for source in chunk:
                try:
                    prepared.append((source, prepare(source).image))
                except HCRError as error:
                    prepared.append((source, error))
            good = [image for _, image in prepared if not isinstance(image, HCRError)]
            probs = iter(self.probabilities(np.stack(good)) if good else [])
            for source, image in prepared:
                results.append((source, image if isinstance(image, HCRError) else self._prediction(image, next(probs))))
        return results


def _digit_prior(value, where):
    try:
        prior = float(value)
    except (TypeError, ValueError):
        prior = math.nan
    if not math.isfinite(prior):
        raise HCRError(
            f"The digit prior stored with {where} is {value!r}, not a finite number: "
            "retrain or use the shipped checkpoint."
        )
    return prior


def _logit_bias(values, count, where):
    """Per-class shifts of the logits (a class-prior correction chosen on real-looking input), or None."""
    if values is None:
        return None
    try:
        bias = torch.tensor([float(v) for v in values], dtype=torch.float32)
    except (TypeError, ValueError):
        bias = torch.tensor([math.nan])
    if len(bias) != count or not torch.isfinite(bias).all():
        raise HCRError(
            f"The class-prior correction stored with {where} is not {count} finite numbers: "
            "retrain or use the shipped checkpoint."
        )
    return bias


def _short(path):
    """A project path as the user sees it in the repository (checkpoints/default.pt)."""
    path = Path(path)
    try:
        return str(path.relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


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


def answer(predictor, source, name=None):
    """What the pad and the web page show: top-3 and the 28x28 input, or one error sentence."""
    try:
        prediction = predictor.predict(source, name=name)
    except HCRError as error:
        return {"error": str(error)}
    return {**prediction.to_dict(), "preview": preview_data_url(prediction.image)}


def format_line(path, prediction):
    top = " | ".join(f"{label} {100 * p:5.1f}%" for label, p in prediction.top3)
    return f"{path}: {top}" + ("  (unsure)" if prediction.unsure else "")


def _read_pages(reader, paths, as_json):
    """--text: each picture (a line or a page) read line by line, in reading order."""
    failed = 0
    for path in paths:
        try:
            results = reader.read_page(path)
        except HCRError as error:
            failed += 1
            print(f"error: {error}", file=sys.stderr)
            continue
        if as_json:
            print(json.dumps({"path": path, "text": "\n".join(r.text for r in results),
                              "lines": [r.to_dict() for r in results]}))
        else:
            for k, r in enumerate(results, 1):
                where = f"{path}" if len(results) == 1 else f"{path} line {k}"
                print(f"{where}: {r.text}  ({100 * r.confidence:.0f}%{', unsure' if r.unsure else ''})")
        sys.stdout.flush()
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
        predictor = Predictor(args.checkpoint, case_sensitive=args.case_sensitive, text=args.text)
    except HCRError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.text:
        return _read_pages(predictor, args.images, args.json)
    failed = 0
    for path, result in predictor.predict_many(args.images):
        if isinstance(result, HCRError):
            failed += 1
            print(f"error: {result}", file=sys.stderr)
        elif args.json:
            print(json.dumps(result.to_dict(path)))
        elif args.text:
            print(f"{path}: {result.text}  ({100 * result.confidence:.0f}%{', unsure' if result.unsure else ''})")
        else:
            print(format_line(path, result))
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

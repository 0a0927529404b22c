"""A drawing pad for the notebook: draw a character and see its top-3, or write a word and see the text.

Built on anywidget, so it runs wherever Jupyter widgets run: JupyterLab, Notebook 7, VS Code
and Colab. The canvas, the bars, the text and the switch between 36 classes, case-sensitive
and "a word or a line" are the same JavaScript as the web demo (static/pad.js).
"""

from pathlib import Path

import anywidget
import traitlets

from .errors import HCRError
from .predict import MODES, answer, decode_data_url, load

STATIC = Path(__file__).resolve().parent / "static"
# 36 classes (0-9, A-Z), case-sensitive (0-9, A-Z, a-z), or a word or a line on a wide canvas


class DrawPad(anywidget.AnyWidget):
    """`DrawPad(predictor, case_predictor=None, text_reader=None)`; `result` holds the latest answer.

    The case-sensitive model and the line reader (`Predictor(text=True)`, or a `crnn.TextReader`)
    are loaded the first time the reader switches to them (`mode = "case"` or `"text"`), unless
    given. In "text" mode the canvas is 4 times as wide (`size` high) for a word or a line.
    """

    _esm = STATIC / "pad.js"
    image = traitlets.Unicode("").tag(sync=True)  # the canvas as a PNG data URL, "" when cleared
    # The latest answer: label, confidence, top3, unsure and preview (a character); text, confidence,
    # unsure and preview (mode "text"); or error; {} while the canvas is blank.
    result = traitlets.Dict({}).tag(sync=True)
    mode = traitlets.Enum(tuple(MODES), default_value="36").tag(sync=True)
    size = traitlets.Int(280).tag(sync=True)  # the canvas's height in pixels (and its width, but in "text" mode)
    pen = traitlets.Int(18).tag(sync=True)

    def __init__(self, predictor=None, case_predictor=None, text_reader=None, **kwargs):
        super().__init__(**kwargs)
        self.predictor = predictor if predictor is not None else load("36")
        self.case_predictor = case_predictor
        self.text_reader = text_reader
        self.observe(self._update, names=["image", "mode"])
        if self.image:  # DrawPad(image=...) answers at once
            self._update()

    def _predictor(self):
        """The model for the current mode; the case-sensitive one and the line reader are loaded on first use."""
        if self.mode == "case":
            if self.case_predictor is None:
                self.case_predictor = load("case")
            return self.case_predictor
        if self.mode == "text":
            if self.text_reader is None:
                self.text_reader = load("text")
            return self.text_reader
        return self.predictor

    def _update(self, change=None):
        if change is not None and change["name"] == "mode" and (change["old"] == "text") != (change["new"] == "text"):
            self.image = ""  # the canvas changed shape and pad.js blanked it: the old drawing is gone
        if not self.image:
            self.result = {}
            return
        try:
            self.result = answer(self._predictor(), decode_data_url(self.image), name="The drawing")
        except HCRError as error:  # for example: no case-sensitive model yet
            self.result = {"error": str(error)}
        except Exception as error:  # a widget callback must never die silently
            self.result = {"error": f"Could not read the drawing ({error}): clear the pad and draw again."}

"""A drawing pad for the notebook: draw with the mouse, see the top-3 guesses as you draw.

Built on anywidget, so it runs wherever Jupyter widgets run: JupyterLab, Notebook 7, VS Code
and Colab. The canvas, the bars and the switch between 36 classes and case-sensitive are the
same JavaScript as the web demo (static/pad.js).
"""

from pathlib import Path

import anywidget
import traitlets

from .errors import HCRError
from .predict import Predictor, answer, decode_data_url

STATIC = Path(__file__).resolve().parent / "static"
MODES = ("36", "case")  # 36 classes (0-9, A-Z), or case-sensitive (0-9, A-Z, a-z)


class DrawPad(anywidget.AnyWidget):
    """`DrawPad(predictor, case_predictor=None)`; the reader draws, `result` holds the latest answer.

    The case-sensitive model is loaded the first time the reader switches to it (`mode = "case"`),
    unless one is given.
    """

    _esm = STATIC / "pad.js"
    image = traitlets.Unicode("").tag(sync=True)  # the canvas as a PNG data URL, "" when cleared
    result = traitlets.Dict({}).tag(sync=True)  # label, confidence, top3, preview, or error
    mode = traitlets.Enum(MODES, default_value="36").tag(sync=True)
    size = traitlets.Int(280).tag(sync=True)
    pen = traitlets.Int(18).tag(sync=True)

    def __init__(self, predictor=None, case_predictor=None, **kwargs):
        super().__init__(**kwargs)
        self.predictor = predictor if predictor is not None else Predictor()
        self.case_predictor = case_predictor
        self.observe(self._update, names=["image", "mode"])
        if self.image:  # DrawPad(image=...) answers at once
            self._update()

    def _predictor(self):
        """The model for the current mode; the case-sensitive one is loaded on first use."""
        if self.mode != "case":
            return self.predictor
        if self.case_predictor is None:
            self.case_predictor = Predictor(case_sensitive=True)
        return self.case_predictor

    def _update(self, change=None):
        if not self.image:
            self.result = {}
            return
        try:
            self.result = answer(self._predictor(), decode_data_url(self.image), name="The drawing")
        except HCRError as error:  # for example: no case-sensitive model yet
            self.result = {"error": str(error)}
        except Exception as error:  # a widget callback must never die silently
            self.result = {"error": f"Could not read the drawing ({error}): clear the pad and draw again."}

"""A drawing pad for the notebook: draw with the mouse, see the top-3 guesses as you draw.

Built on anywidget, so it runs wherever Jupyter widgets run: JupyterLab, Notebook 7, VS Code
and Colab. The canvas and the bars are the same JavaScript as the web demo (static/pad.js).
"""

from pathlib import Path

import anywidget
import traitlets

from .predict import Predictor, answer, decode_data_url

STATIC = Path(__file__).resolve().parent / "static"


class DrawPad(anywidget.AnyWidget):
    """`DrawPad(predictor)`; the reader draws, `result` holds the latest answer."""

    _esm = STATIC / "pad.js"
    image = traitlets.Unicode("").tag(sync=True)  # the canvas as a PNG data URL, "" when cleared
    result = traitlets.Dict({}).tag(sync=True)  # label, confidence, top3, preview, or error
    size = traitlets.Int(280).tag(sync=True)
    pen = traitlets.Int(18).tag(sync=True)

    def __init__(self, predictor=None, **kwargs):
        super().__init__(**kwargs)
        self.predictor = predictor if predictor is not None else Predictor()
        self.observe(self._on_image, names="image")

    def _on_image(self, change):
        url = change["new"]
        if not url:
            self.result = {}
            return
        try:
            self.result = answer(self.predictor, decode_data_url(url), name="The drawing")
        except Exception as error:  # a widget callback must never die silently
            self.result = {"error": f"Could not read the drawing ({error}): clear the pad and draw again."}

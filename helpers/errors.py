"""One error type for everything a learner can run into, phrased as what to do next."""


class HCRError(Exception):
    """A problem the user can fix; the message is one sentence saying how."""


def show_errors_without_traceback():
    """In Jupyter, print HCRError messages as one red line instead of a long traceback.

    Other exceptions keep their full traceback: those are bugs, and the traceback helps.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False

    def _handler(shell, etype, value, tb, tb_offset=None):
        import sys

        sys.stderr.write(f"\x1b[31m{value}\x1b[0m\n")
        return None

    shell.set_custom_exc((HCRError,), _handler)
    return True

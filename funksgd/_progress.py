"""Progress bars: tqdm's when it is installed (the ``progress`` extra), else none."""

import sys


def progress_bar(total, desc, unit, **options):
    """A tqdm bar on stderr, or None when tqdm is not installed (callers then print lines or
    nothing); ``options`` go to tqdm (``unit_scale``)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, **options)


class EpochPrinter:
    """``verbose``: a line per epoch (1), or a tqdm progress bar per epoch loop (2)."""

    def __init__(self, verbose, max_iter, n_components):
        self.verbose, self.max_iter, self.n_components = verbose, max_iter, n_components
        self.bar, self.factor = None, None

    def chain(self, callback):
        """The callback for the engine: this printer, then the user's ``callback``."""
        if not self.verbose:
            return callback

        def on_epoch(info):
            self(info)
            if callback is not None:
                callback(info)

        return on_epoch

    def __call__(self, info):
        prefix = "" if info.factor is None else f"factor {info.factor + 1}/{self.n_components}, "
        line = (
            f"training RMSE {info.training_rmse:.4f}"
            + (
                ""
                if info.validation_rmse is None
                else f", validation RMSE {info.validation_rmse:.4f}"
            )
            + f", eta {info.learning_rate:.3g}, "
            f"{info.n_ratings / info.seconds / 1e6:.1f}M ratings/s"
        )
        if self.verbose > 1 and (self.bar is None or info.factor != self.factor):
            self.close()
            self.bar = progress_bar(self.max_iter, f"{prefix}epochs", "epoch")
            self.factor = info.factor
        if self.bar is None:
            print(f"{prefix}epoch {info.epoch}: {line}")
        else:
            self.bar.set_postfix_str(line, refresh=False)
            self.bar.update()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

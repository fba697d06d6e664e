"""``python -m keras_ser COMMAND ARGS``: the ``keras-ser`` command (see :mod:`keras_ser._cli`)."""

import sys

from keras_ser._cli import main

if __name__ == "__main__":
    sys.exit(main())

"""softalign: neural machine translation with recurrent encoder-decoders and soft attention."""

__version__ = "0.1.0"

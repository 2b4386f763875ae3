"""Soft alignments as products: heatmaps, word alignments (Pharaoh) with AER, BLEU by length.

One module per job: ``words`` (subword -> word merging), ``forced`` (attention of a given
target), ``heatmap`` (plots), ``pharaoh`` (read/write links), ``extract`` (links from
attention, symmetrization, diagonal baseline), ``aer`` (Och & Ney), ``align`` (files -> links),
``by_length`` and ``length_plot`` (BLEU/chrF per source-length bucket), ``compare`` (several runs).
"""

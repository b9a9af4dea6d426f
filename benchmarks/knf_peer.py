"""kaldi-native-fbank set up exactly like vasr's features (its Python defaults differ: dither 3e-5,
snip_edges True, 23 bins, high_freq 0). Shared by the fbank benchmark and tests/test_fbank.py."""
from __future__ import annotations

import numpy as np

from vasr.kernels.fbank_py import FbankOptions


def knf_fbank(wave: np.ndarray, opts: FbankOptions = FbankOptions()) -> np.ndarray:
    """float32 (T, num_bins) log-mel of ``wave`` by kaldi-native-fbank, end to end as a caller uses it."""
    import kaldi_native_fbank as knf

    k = knf.FbankOptions()
    k.frame_opts.samp_freq = opts.sample_rate
    k.frame_opts.dither = opts.dither
    k.frame_opts.snip_edges = opts.snip_edges
    k.frame_opts.window_type = opts.window
    k.frame_opts.preemph_coeff = opts.preemph
    k.frame_opts.remove_dc_offset = opts.remove_dc
    k.frame_opts.frame_length_ms = opts.frame_length_ms
    k.frame_opts.frame_shift_ms = opts.frame_shift_ms
    k.mel_opts.num_bins = opts.num_bins
    k.mel_opts.low_freq = opts.low_freq
    k.mel_opts.high_freq = opts.high_freq
    k.use_energy = False
    k.use_log_fbank = True
    k.use_power = True
    online = knf.OnlineFbank(k)
    online.accept_waveform(opts.sample_rate, wave)
    online.input_finished()
    return np.array([online.get_frame(i) for i in range(online.num_frames_ready)],
                    dtype=np.float32).reshape(-1, opts.num_bins)

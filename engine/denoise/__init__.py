"""Recurrent denoising autoencoder (Chaitanya et al. 2017) with optional auxiliary feature
modulation (Xu et al. 2019), its training data and training."""

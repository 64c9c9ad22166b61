"""Progressive Monte Carlo path tracing (Mitsuba 3) with auxiliary buffers for denoising."""

"""`make bench`: cold imports, warm handler latency, and the local cloud's throughput and
signal-to-fill latency. Figures are printed side by side with their reference; ratios hold on noisy
2-core machines where absolute times drift."""

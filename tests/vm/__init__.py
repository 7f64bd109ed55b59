"""VM tests: the rendered host booted in QEMU (issue #7)."""

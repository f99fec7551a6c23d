"""neural_coder.runtime: model compression with the API of Intel Neural Compressor 2.x.

Imports only torch (never libcst, black or click), so a rewritten script needs
nothing but torch and this package.
"""

"""UCCL's Python package name, served by tcpx-p2p: ``from uccl import p2p``."""

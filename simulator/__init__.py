"""A simulated Bambu Lab printer farm on loopback, speaking the printers' real protocols.

Each printer is its own mosquitto broker over TLS, an implicit-FTPS server and a firmware model
that reports and prints on a simulated clock. Run it with `python -m simulator`; drive it from
tests with `simulator.control`.
"""

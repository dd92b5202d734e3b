"""The farm's rules without Home Assistant: job records, shelf rules, settings, files, the books.

Nothing here imports Home Assistant (a test imports every module in a fresh interpreter to prove
it); the runtime (`runtime/`) keeps these records in storage and the faces show them.
"""

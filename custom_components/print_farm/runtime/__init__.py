"""The Home Assistant runtime: the farm object, its devices' coordinators, the job and books managers.

Everything here may use Home Assistant; none of it answers a request or builds a REST body (that is
`api/`) or shows an entity (the platform modules at the package top).
"""

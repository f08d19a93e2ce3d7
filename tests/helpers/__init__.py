"""Test helpers: factories, DICOM and PHI builders, real brokers and workers, browser steps.

Every test module imports shared code from here, never from another test module.
"""

"""Raw cryptographic primitives. HAZARDOUS: use piiguard.Guard instead.

These thin wrappers over ``cryptography`` take keys, nonces and associated data as given.
Misused (a nonce reused, a key shared between purposes) they lose every guarantee. They are
never re-exported from ``piiguard``; only the recipes in ``piiguard.crypto`` call them.
"""

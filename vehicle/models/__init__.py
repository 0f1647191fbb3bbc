"""Models on the car: the bundle format (`bundle.py`), its ed25519 signatures
(`signing.py`) and the atomic model store with rollback (`store.py`). Importing the
package imports none of its modules."""

package konorkestra

// Version is the SDK version sent in hello. It is the version of Konorkestra
// itself: konorkestra/__init__.py holds it, and tests/packaging/test_versions.py
// fails when this constant (or the Maven artifact's) differs.
const Version = "0.1.0"

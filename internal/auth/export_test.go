package auth

// DummyHash exposes dummyHash to the external tests.
const DummyHash = dummyHash

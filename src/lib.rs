//! Examples and integration tests of hookserver.

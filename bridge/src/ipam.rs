//! IP address manager (being written).

//! nf_tables rules over netlink (being written).

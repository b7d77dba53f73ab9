//! Sanctions lists and screening (under construction).

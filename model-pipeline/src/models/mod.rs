//! Customer-value models fitted by maximum likelihood.

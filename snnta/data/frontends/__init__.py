"""Front ends turning raw signals into events: the cochlear (gammatone + LIF) model for audio."""

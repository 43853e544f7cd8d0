"""Helpers every layer may use: atomic file writes (:mod:`.io`), typed checks of plain config mappings
(:mod:`.checks`) and process settings (:mod:`.runtime`)."""

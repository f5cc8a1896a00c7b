"""Feature families of the day-ahead load model, one module each, and the frame that joins them."""

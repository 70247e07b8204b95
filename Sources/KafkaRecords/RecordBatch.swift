// record batches

"""Files → documents → chunks: readers per format, decoding, chunking, language identification."""

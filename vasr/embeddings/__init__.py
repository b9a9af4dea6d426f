"""Word embeddings for rescoring and hot words: semantic Word2Vec over transcripts, Phon2Vec over
phonetic tokens (``phonetic``), FAISS indexes for nearest neighbours (``vectors``)."""

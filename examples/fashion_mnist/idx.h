/* idx: reads the IDX files of MNIST and Fashion-MNIST (gzipped or plain)
 * into memory. Errors come back as a BRN_E* code and a message in the
 * caller's buffer; nothing here prints. */
#ifndef IDX_H
#define IDX_H

#include <stddef.h>
#include <stdint.h>

#define IDX_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define IDX_CLASSES 10

/* One split: images[i*rows*cols ...] is example i, each pixel x/255 so in
 * [0, 1] (the network normalizes after its first conv); labels in 0..9. */
typedef struct idx_set {
	int n, rows, cols;
	float *images;
	int32_t *labels;
} idx_set;

/* The data directory: flag if not NULL, else $BRN_DATA if set and not
 * empty, else IDX_DEFAULT_DIR. */
const char *idx_data_dir(const char *flag);

/* Reads the images and labels of one split ("train" or "t10k") from dir:
 * <split>-images-idx3-ubyte.gz, or the same name without .gz when only that
 * exists. On failure *s is left empty. */
int idx_load(idx_set *s, const char *dir, const char *split, char *err, size_t errlen);
void idx_free(idx_set *s);

/* The files idx_load reads for split: images and labels, len bytes each. */
void idx_paths(const char *dir, const char *split, char *images, char *labels, size_t len);

/* The halves of idx_load, for a single file. */
int idx_read_images(const char *path, float **images, int *n, int *rows, int *cols,
		    char *err, size_t errlen);
int idx_read_labels(const char *path, int32_t **labels, int *n, char *err, size_t errlen);

/* How many of n rows of scores (classes each) have their largest score,
 * the first on ties, at the example's label. */
int idx_count_correct(const float *scores, const int32_t *labels, int n, int classes);

#endif

/* bundle_limits.h — the size bounds every bundle decoder checks before it allocates.
 *
 * Its own header so that the decoders of each model family (bundle.c, bundle_trees.c, ...)
 * share one set of bounds without including each other. */
#ifndef XD_API_BUNDLE_LIMITS_H
#define XD_API_BUNDLE_LIMITS_H

/* Bounds on what a bundle may declare. */

#define XD_BUNDLE_MAX_BYTES (256u << 20)
#define XD_BUNDLE_MAX_FEATURES 4096
#define XD_BUNDLE_MAX_CATEGORIES 1024
#define XD_BUNDLE_MAX_CLASSES 1024
#define XD_BUNDLE_MAX_LAYERS 64
#define XD_BUNDLE_MAX_WIDTH 16384
#define XD_BUNDLE_MAX_BACKGROUND 100000

#endif

// Copies that Swift cannot express: stores that bypass the cache. (processor.h: instructions.)
#pragma once
#include <stddef.h>

/// Copies `count` bytes from `source` to `destination` (which must not overlap) with non-temporal
/// stores: the destination's lines are written to memory without first being read into the cache.
/// For copies whose destination will not fit in the cache anyway, this saves the read a normal
/// store makes of every line it writes (a third of the memory traffic) and keeps the cache for the
/// source. Small copies fall back to memcpy. The stores are fenced before it returns, so another
/// thread that synchronises with this one afterwards sees them as it would memcpy's.
void skein_copy_streaming(void *destination, const void *source, size_t count);

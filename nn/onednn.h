/* Convolutions and pooling on oneDNN in a channel-blocked layout; internal to nn/.
 *
 * The blocked layout (oneDNN's aBcd16b, aBcd8b): a sample's channels in
 * blocks of CB = nn_onednn_block(); block j holds channels j*CB..j*CB+CB-1
 * as (h, w, CB), the channel fastest. Element (b, c, y, x) of a (B, C, H, W)
 * tensor lies at b*C*H*W + (c/CB)*H*W*CB + (y*W + x)*CB + c%CB. Nets run in
 * it only when every inner channel count is a multiple of CB (no padding,
 * so a tensor has the size it has in NCHW), see layout_fits in models.c; a
 * layer of such a net has l->cb = CB, else 0 (NCHW). */
#ifndef SP_NN_ONEDNN_H
#define SP_NN_ONEDNN_H

#include <stddef.h>

#include "nn/nn.h"

/* The channel block oneDNN's fastest kernels on this CPU take: 16 with
 * AVX-512, 8 with AVX2; 0 below that (nets then stay in NCHW). */
int nn_onednn_block(void);

/* Prepares l (a conv, maxpool or avgpool of a blocked net, l->cb set) for
 * batches of B: its primitives and its weight and workspace buffers. 0, or
 * -1 when oneDNN refuses (the net then stays in NCHW) or memory runs out.
 * The passes below make the primitives again for another B (the last,
 * smaller batch of an epoch) through oneDNN's primitive cache. Each pass
 * returns 0, or -1 with err (SP_EXIT_SYSTEM) naming the layer, its shape,
 * the batch and the reason: the primitives for another B cannot be made, a
 * primitive fails to run, or the buffer of the gradient through a fused
 * relu cannot grow. After a failure the layer's outputs and gradients are
 * undefined, its state still safe to free. */
int nn_onednn_prepare(nn_layer *l, int B);
int nn_onednn_conv_forward(nn_layer *l, const float *x, int B, sp_err *err);
int nn_onednn_conv_backward(nn_layer *l, const float *dy, int B, sp_err *err);
int nn_onednn_pool_forward(nn_layer *l, const float *x, int B, sp_err *err);
int nn_onednn_pool_backward(nn_layer *l, const float *dy, int B, sp_err *err);
/* The bytes l's own oneDNN state holds (max pooling's workspace); the
 * weights in oneDNN's layout and the gradient through a fused relu live in
 * buffers all layers share (onednn.c). */
size_t nn_onednn_bytes(const nn_layer *l);
void nn_onednn_free(nn_layer *l); /* accepts a layer without oneDNN state */

#endif

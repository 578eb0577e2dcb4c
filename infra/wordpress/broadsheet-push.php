<?php
/**
 * Plugin Name: Broadsheet push
 * Description: Sends each post to Broadsheet when it is published, and again when a published post is updated, signed with a secret shared with Broadsheet. Broadsheet also pulls the REST API on a schedule, so a push that fails is caught up later.
 * Version:     1.0.0
 * Requires at least: 5.7
 * License:     MIT
 *
 * Set both in wp-config.php; without them the plugin does nothing:
 *
 *   define( 'BROADSHEET_PUSH_URL', 'https://news.example.com/hooks/wordpress' );
 *   define( 'BROADSHEET_PUSH_SECRET', 'the same 32+ character secret Broadsheet has' );
 *
 * The request: POST, Content-Type application/json, body
 * {"event":"publish"|"update","post":<the post as GET /wp/v2/posts/ID?_embed gives it>},
 * X-Broadsheet-Timestamp: Unix seconds, and
 * X-Broadsheet-Signature: "sha256=" . hex HMAC-SHA256 of timestamp . "." . body.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

// The fields Broadsheet reads (wordpress.Fields in Broadsheet's code):
// the rest, the post's whole content above all, would only make the
// request bigger.
const BROADSHEET_PUSH_FIELDS = array( 'id', 'date', 'date_gmt', 'modified', 'modified_gmt', 'link', 'status', 'type', 'title', 'excerpt', 'categories', '_links', '_embedded' );

/**
 * The signature header's value for a body sent at a timestamp.
 */
function broadsheet_push_sign( $secret, $timestamp, $body ) {
	return 'sha256=' . hash_hmac( 'sha256', $timestamp . '.' . $body, $secret );
}

/**
 * The wp_remote_post() arguments of a push: body and signed headers.
 */
function broadsheet_push_request( $event, $post_data, $secret, $timestamp ) {
	$body      = wp_json_encode( array( 'event' => $event, 'post' => $post_data ) );
	$timestamp = (string) $timestamp;
	return array(
		'body'    => $body,
		'timeout' => 5,
		'headers' => array(
			'Content-Type'           => 'application/json',
			'X-Broadsheet-Timestamp' => $timestamp,
			'X-Broadsheet-Signature' => broadsheet_push_sign( $secret, $timestamp, $body ),
		),
	);
}

// Posts to send when the request ends, by ID: a post's terms and
// featured image are saved after transition_post_status fires (the block
// editor saves categories in the same request, later), and publishing
// fires both hooks, which must make one push.
$GLOBALS['broadsheet_push_pending'] = array();

function broadsheet_push_queue( $post_id, $event ) {
	if ( 'post' !== get_post_type( $post_id ) ) {
		return;
	}
	$pending = &$GLOBALS['broadsheet_push_pending'];
	if ( ! isset( $pending[ $post_id ] ) || 'publish' === $event ) {
		$pending[ $post_id ] = $event;
	}
}

add_action(
	'transition_post_status',
	function ( $new_status, $old_status, $post ) {
		if ( 'publish' === $new_status && 'publish' !== $old_status ) {
			broadsheet_push_queue( $post->ID, 'publish' );
		}
	},
	10,
	3
);

add_action(
	'post_updated',
	function ( $post_id, $post_after, $post_before ) {
		// A first publication is transition_post_status's.
		if ( 'publish' === $post_after->post_status && 'publish' === $post_before->post_status ) {
			broadsheet_push_queue( $post_id, 'update' );
		}
	},
	10,
	3
);

add_action( 'shutdown', 'broadsheet_push_flush' );

/**
 * The post as the REST API shows it to a reader, with its embeds.
 */
function broadsheet_push_post_data( $post_id ) {
	$request = new WP_REST_Request( 'GET', '/wp/v2/posts/' . $post_id );
	$request->set_query_params( array( 'context' => 'view' ) );
	$response = rest_do_request( $request );
	if ( $response->is_error() ) {
		return null;
	}
	$data = rest_get_server()->response_to_data( $response, array( 'author', 'wp:term', 'wp:featuredmedia' ) );
	return array_intersect_key( $data, array_flip( BROADSHEET_PUSH_FIELDS ) );
}

/**
 * Sends the pending posts. A failure is logged: the pull catches up.
 */
function broadsheet_push_flush() {
	if ( ! defined( 'BROADSHEET_PUSH_URL' ) || ! defined( 'BROADSHEET_PUSH_SECRET' ) ) {
		return;
	}
	$pending                             = $GLOBALS['broadsheet_push_pending'];
	$GLOBALS['broadsheet_push_pending'] = array();
	foreach ( $pending as $post_id => $event ) {
		$data = broadsheet_push_post_data( $post_id );
		if ( null === $data ) {
			continue;
		}
		$res = wp_remote_post( BROADSHEET_PUSH_URL, broadsheet_push_request( $event, $data, BROADSHEET_PUSH_SECRET, time() ) );
		if ( is_wp_error( $res ) ) {
			error_log( 'Broadsheet push of post ' . $post_id . ' failed: ' . $res->get_error_message() );
		} elseif ( wp_remote_retrieve_response_code( $res ) >= 300 ) {
			error_log( 'Broadsheet push of post ' . $post_id . ' answered ' . wp_remote_retrieve_response_code( $res ) );
		}
	}
}
